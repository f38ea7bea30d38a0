"""Rollups follow the daily KPIs: a sensor (RUNNING by default) that re-materializes the weeks
and months whose daily KPI partitions were materialized since its last tick.

The same pattern as `kpis_after_ingestion_sensor` (and its helpers): a tick reads only the new
materialization events of `account_kpis_daily` and `content_performance_daily`, waits until the
runs that wrote them are finished, and asks one run per range of consecutive periods. Whatever
materialized a day (the KPI sensor after ingestion, a backfill, a late day re-materialized from
the UI), the week and the month containing it are refreshed, and the NEXT week/month too when the
day is its period's last (the next period's follower growth starts from that day's snapshot).
The period in progress is a partition (`end_offset=1`) and is refreshed as its days land;
periods Dagster does not have (before the first one, after the current one) are not asked for.
Why not declarative automation: see kpi_automation.py (its cost grows with partitions; eager
conditions fire only when every parent partition exists, never for a week in progress).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import dagster as dg

from analytics_pipeline.defs.kpi_assets import KPI_ASSET_KEYS
from analytics_pipeline.defs.kpi_automation import (
    KPI_RUN_TAGS,
    finished_runs,
    landed_days,
    read_events,
)
from analytics_pipeline.defs.kpi_rollup_assets import ROLLUP_ASSET_KEYS
from analytics_pipeline.defs.partitions import RANGE_END_TAG, RANGE_START_TAG, SETTINGS
from analytics_pipeline.kpis import periods

ROLLUP_JOBS = {
    grain: dg.define_asset_job(
        f"kpi_rollups_{grain}ly_job",
        selection=dg.AssetSelection.assets(key),
        description=f"kpi_rollups_{grain}ly for a range of {grain}s.",
    )
    for grain, key in ROLLUP_ASSET_KEYS.items()
}


def existing_periods(
    grain: str, starts: Sequence[dt.date], today: dt.date, first_day: dt.date
) -> list[dt.date]:
    """The `starts` that are partitions on `today`: from the period of the daily partitions'
    first day through the period in progress (the rollup partitions' end_offset=1)."""
    first, last = periods.period_start(grain, first_day), periods.period_start(grain, today)
    return [start for start in starts if first <= start <= last]


def rollup_run_requests(
    days: Sequence[dt.date], cursor: int, today: dt.date, first_day: dt.date
) -> list[dg.RunRequest]:
    """One run per grain and range of consecutive periods that `days` affect."""
    requests = []
    for grain, job in ROLLUP_JOBS.items():
        affected = periods.periods_affected_by(grain, days)
        starts = existing_periods(grain, affected, today, first_day)
        for first, last in periods.consecutive_ranges(grain, starts):
            requests.append(_request(job.name, grain, first, last, cursor))
    return requests


def _request(
    job_name: str, grain: str, first: dt.date, last: dt.date, cursor: int
) -> dg.RunRequest:
    run_key = f"rollups-{grain}-{first.isoformat()}-{last.isoformat()}-{cursor}"
    if first == last:
        return dg.RunRequest(
            run_key=run_key, job_name=job_name, partition_key=first.isoformat(), tags=KPI_RUN_TAGS
        )
    return dg.RunRequest(
        run_key=run_key,
        job_name=job_name,
        tags={**KPI_RUN_TAGS, RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
    )


@dg.sensor(
    jobs=list(ROLLUP_JOBS.values()),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="After daily KPI runs finish: re-materializes the weeks and months containing "
    "their days (and the next period after a period's last day).",
)
def kpi_rollups_after_daily_sensor(
    context: dg.SensorEvaluationContext,
) -> dg.SensorResult | dg.SkipReason:
    cursor = int(context.cursor or 0)
    events, complete_up_to = read_events(context.instance, cursor, KPI_ASSET_KEYS)
    if not events:
        return dg.SkipReason("No daily KPI partition was materialized since the last tick.")
    finished = finished_runs(context.instance, (event.run_id for event in events))
    landed = landed_days(events, finished, complete_up_to, cursor)
    today = dt.datetime.now(dt.UTC).date()
    requests = rollup_run_requests(
        landed.days, landed.cursor, today, SETTINGS.partitions_start_date
    )
    return dg.SensorResult(run_requests=requests, cursor=str(landed.cursor))
