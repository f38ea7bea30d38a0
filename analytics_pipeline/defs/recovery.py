"""What `analytics-pipeline integrations resume` re-requests: the partitions of an integration's
initial window (the lookback window ending on the current snapshot day, as the sensor's first
run) that are not materialized yet, for every ingestion asset.

A partition counts as missing when ANY of the three ingestion assets has no materialization for
it: a failed, skipped (paused) or never-run partition. The days come back as contiguous blocks,
each one range run (`runs.run_backfill`), usually a single block.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence

import dagster as dg

from analytics_pipeline.defs.assets import (
    ACCOUNT_DAILY_METRICS,
    CONTENT_DAILY_METRICS,
    CONTENT_METADATA,
)
from analytics_pipeline.defs.automation import initial_window
from analytics_pipeline.defs.runs import RunSummary, ensure_dagster_home, run_backfill
from analytics_pipeline.records import ContentPartition, date_range


def instance_line(instance: dg.DagsterInstance) -> str:
    """ "Dagster instance: <home> (sqlite|postgres)": where runs are recorded (the UI and the
    daemon must use the same one)."""
    storage = type(instance.run_storage).__name__.lower()
    kind = next((name for name in ("postgres", "sqlite", "mysql") if name in storage), storage)
    return f"Dagster instance: {instance.root_directory} ({kind})"


def current_instance_line() -> str:
    """`instance_line` of $DAGSTER_HOME (seeded first, as `runs.ensure_dagster_home` does)."""
    ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        return instance_line(instance)


def rerun_initial_window(
    integration_id: str,
    tracked: Sequence[str],
    now: dt.datetime,
    say: Callable[[str], None],
    platform_of: Mapping[str, str] | None = None,
) -> list[RunSummary]:
    """Run the initial window's partitions of `integration_id` that are not materialized, in
    runs launched like the CLI's `backfill` (one range run per contiguous block of days);
    `say` reports each step. [] when nothing is missing."""
    ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        say(instance_line(instance))
        blocks = missing_initial_days(instance, integration_id, now)
    summaries: list[RunSummary] = []
    for start, end in blocks:
        say(f"Re-requesting {integration_id} {start}..{end} (not materialized).")
        backfill = run_backfill(start, end, tracked, [integration_id], platform_of=platform_of)
        summaries.extend(backfill.runs)
    return summaries


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
