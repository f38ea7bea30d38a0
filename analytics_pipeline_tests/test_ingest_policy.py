"""Which failures Dagster retries inside a run, and which wait for the next scheduled run."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics_pipeline.ingest import (
    MAX_IN_RUN_RETRY_AFTER_S,
    PartitionOutcome,
    Status,
    snapshot_day,
)
from analytics_pipeline.records import AssetName, ContentPartition, ErrorClass

DAY = dt.date(2026, 11, 20)


@pytest.mark.parametrize(
    ("error_class", "retry_after", "retryable"),
    [
        (ErrorClass.TRANSIENT, None, True),
        (ErrorClass.TRANSIENT, 30.0, True),
        # A daily quota / usage cap resets in hours: do not burn retries on it.
        (ErrorClass.TRANSIENT, MAX_IN_RUN_RETRY_AFTER_S + 1, False),
        (ErrorClass.PERMANENT_CREDENTIAL, None, False),
        (ErrorClass.PERMANENT_CONFIG, None, False),
        (ErrorClass.INVALID_RESPONSE, None, False),
    ],
)
def test_retryable(error_class, retry_after, retryable):
    outcome = PartitionOutcome(
        AssetName.CONTENT_METADATA,
        ContentPartition(DAY, "fb"),
        Status.FAILED,
        {},
        error_class,
        "m",
        retry_after,
    )
    assert outcome.retryable is retryable


CUTOFF = dt.timedelta(hours=3)


@pytest.mark.parametrize(
    ("observed_at", "day"),
    [
        ("2026-11-24T03:00:00+00:00", "2026-11-24"),  # the cutoff itself: the new day
        ("2026-11-24T02:59:59+00:00", "2026-11-23"),  # just before: end of yesterday
        ("2026-11-24T01:30:00+00:00", "2026-11-23"),  # the daily run
        ("2026-11-24T00:00:00+00:00", "2026-11-23"),
        ("2026-11-24T23:59:59+00:00", "2026-11-24"),
        ("2026-11-24T04:30:00+01:00", "2026-11-24"),  # an offset is converted to UTC first
        ("2026-11-24T02:30:00+01:00", "2026-11-23"),
    ],
)
def test_a_snapshot_is_stamped_on_the_day_it_was_observed(observed_at, day):
    stamp = snapshot_day(dt.datetime.fromisoformat(observed_at), CUTOFF)
    assert stamp == dt.date.fromisoformat(day)


def test_a_snapshot_is_never_stamped_more_than_one_day_back():
    start = dt.datetime(2026, 10, 30, tzinfo=dt.UTC)  # across the US and EU DST changes
    for minutes in range(0, 8 * 24 * 60, 7):
        observed = start + dt.timedelta(minutes=minutes)
        assert 0 <= (observed.date() - snapshot_day(observed, CUTOFF)).days <= 1
