"""Which failures Dagster retries inside a run, and which wait for the next scheduled run."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics_pipeline.ingest import (
    MAX_IN_RUN_RETRY_AFTER_S,
    PartitionOutcome,
    Status,
    snapshot_is_recordable,
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


@pytest.mark.parametrize(
    ("days_old", "window", "recordable"),
    [(0, 2, True), (2, 2, True), (3, 2, False), (1, 0, False), (-1, 2, False)],
)
def test_snapshot_window(days_old, window, recordable):
    today = dt.date(2026, 11, 24)
    assert snapshot_is_recordable(today - dt.timedelta(days=days_old), today, window) is recordable
