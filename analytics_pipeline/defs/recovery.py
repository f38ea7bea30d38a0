"""What `analytics-pipeline integrations resume` re-requests: the partitions of an integration's
initial window (the lookback window ending on the current snapshot day, as the sensor's first
run) that are not materialized yet, for every ingestion asset.

A partition counts as missing when ANY of the three ingestion assets has no materialization for
it: a failed, skipped (paused) or never-run partition. The days come back as contiguous blocks,
each one range run (`runs.run_backfill`), usually a single block.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from analytics_pipeline.defs.assets import (
    ACCOUNT_DAILY_METRICS,
    CONTENT_DAILY_METRICS,
    CONTENT_METADATA,
)
from analytics_pipeline.defs.automation import initial_window
from analytics_pipeline.records import ContentPartition, date_range


def missing_initial_days(
    instance: dg.DagsterInstance, integration_id: str, now: dt.datetime
) -> list[tuple[dt.date, dt.date]]:
    """Contiguous (start, end) blocks of the initial window's days not fully materialized."""
    start, end = initial_window(now)
    days = list(date_range(start, end))
    wanted = {ContentPartition(day, integration_id).key: day for day in days}
    missing: set[dt.date] = set()
    for asset in (CONTENT_METADATA, CONTENT_DAILY_METRICS, ACCOUNT_DAILY_METRICS):
        done = instance.get_materialized_partitions(asset)
        missing.update(day for key, day in wanted.items() if key not in done)
    return _blocks(sorted(missing))


def _blocks(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    blocks: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if blocks and blocks[-1][1] + dt.timedelta(days=1) == day:
            blocks[-1] = (blocks[-1][0], day)
        else:
            blocks.append((day, day))
    return blocks
