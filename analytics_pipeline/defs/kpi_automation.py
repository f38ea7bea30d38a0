"""KPIs follow ingestion: a sensor (RUNNING by default) that re-materializes the KPI days whose
ingestion partitions landed since its last tick.

Why a sensor rather than an automation condition: its cost follows the new materialization
events (a tick reads only what landed since its cursor), whereas evaluating a condition over
date x integration parents grows with days x integrations (dagster-facts: 24-66 s per tick at
1,000 integrations). It waits for the ingestion runs to finish, so a run over 1,000 integrations
triggers one KPI run per day range, not one per landed partition: events of a run still in
progress stop the tick at that event (the cursor stays before it) and are picked up when it ends.
Every landed day is covered, whatever launched it (schedule, backfill, a re-materialization
from the UI): a re-materialized day re-materializes its KPIs, a backfill of a range its range.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dagster as dg

from analytics_pipeline.defs.assets import (
    ACCOUNT_DAILY_METRICS,
    CONTENT_DAILY_METRICS,
    CONTENT_METADATA,
)
from analytics_pipeline.defs.kpi_assets import KPI_ASSET_KEYS
from analytics_pipeline.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
from analytics_pipeline.defs.report_assets import SOCIAL_MEDIA_REPORT
from analytics_pipeline.records import ContentPartition, PartitionKeyError

INGESTION_ASSETS = (CONTENT_METADATA, CONTENT_DAILY_METRICS, ACCOUNT_DAILY_METRICS)
EVENTS_PER_TICK = 5_000  # per ingestion asset; the rest waits for the next tick
# KPI runs wait behind queued ingestion runs (same run queue): KPIs never delay ingestion.
KPI_RUN_TAGS = {"dagster/priority": "-1"}

kpi_job = dg.define_asset_job(
    "kpi_job",
    selection=dg.AssetSelection.assets(*KPI_ASSET_KEYS, SOCIAL_MEDIA_REPORT),
    description=(
        "content_performance_daily and account_kpis_daily for a range of UTC days, then "
        "social_media_report (the items those days measured)."
    ),
    # One process per run, steps one after the other (as ingestion_job): step subprocesses
    # would each pay the imports (dagster, pandas) for a few seconds of SQL, and on SQLite the
    # two steps' write transactions would only wait for each other.
    executor_def=dg.in_process_executor,
)


@dataclass(frozen=True)
class LandedEvent:
    storage_id: int
    run_id: str
    partition_key: str | None


@dataclass(frozen=True)
class LandedDays:
    """The days to refresh and the cursor to store (every event up to it is handled)."""

    days: tuple[dt.date, ...]
    cursor: int


def landed_days(
    events: Sequence[LandedEvent], finished_runs: set[str], complete_up_to: int | None, cursor: int
) -> LandedDays:
    """The days of `events` (sorted by storage id) up to the first event of a run that is not
    finished, and not beyond `complete_up_to` (the last storage id every asset's read reached
    when a read was cut by its limit)."""
    days: set[dt.date] = set()
    for event in events:
        if complete_up_to is not None and event.storage_id > complete_up_to:
            break
        if event.run_id not in finished_runs:
            break
        cursor = event.storage_id
        day = _day_of(event.partition_key)
        if day is not None:
            days.add(day)
    return LandedDays(tuple(sorted(days)), cursor)


def _day_of(partition_key: str | None) -> dt.date | None:
    """The day of an ingestion key ("<date>|<integration>") or of a daily KPI key ("<date>")."""
    if partition_key is None:
        return None
    try:
        return ContentPartition.parse(partition_key).day
    except PartitionKeyError:
        pass
    try:
        return dt.date.fromisoformat(partition_key)
    except ValueError:
        return None


def day_ranges(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days grouped into (first, last) ranges."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + dt.timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def kpi_run_request(first: dt.date, last: dt.date, cursor: int) -> dg.RunRequest:
    """One KPI run over days first..last (a range run: one step, one transaction per day)."""
    run_key = f"kpis-{first.isoformat()}-{last.isoformat()}-{cursor}"
    if first == last:
        return dg.RunRequest(run_key=run_key, partition_key=first.isoformat(), tags=KPI_RUN_TAGS)
    return dg.RunRequest(
        run_key=run_key,
        tags={**KPI_RUN_TAGS, RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()},
    )


def read_events(
    instance: dg.DagsterInstance, cursor: int, keys: Sequence[dg.AssetKey] = INGESTION_ASSETS
) -> tuple[list[LandedEvent], int | None]:
    """The materializations of `keys` after `cursor` (at most EVENTS_PER_TICK per asset) sorted
    by storage id, and the storage id up to which every asset's read is complete (or None)."""
    events: list[LandedEvent] = []
    complete_up_to: int | None = None
    for key in keys:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=cursor),
            limit=EVENTS_PER_TICK,
            ascending=True,
        ).records
        if len(records) == EVENTS_PER_TICK:
            last = records[-1].storage_id
            complete_up_to = last if complete_up_to is None else min(complete_up_to, last)
        events.extend(LandedEvent(r.storage_id, r.run_id, r.partition_key) for r in records)
    events.sort(key=lambda event: event.storage_id)
    return events, complete_up_to


def finished_runs(instance: dg.DagsterInstance, run_ids: Iterable[str]) -> set[str]:
    finished = set()
    for run_id in set(run_ids):
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:  # a deleted run will not write more
            finished.add(run_id)
    return finished


@dg.sensor(
    job=kpi_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="After ingestion runs finish: re-materializes the KPI days they touched (one "
    "run per range of consecutive days).",
)
def kpis_after_ingestion_sensor(
    context: dg.SensorEvaluationContext,
) -> dg.SensorResult | dg.SkipReason:
    cursor = int(context.cursor or 0)
    events, complete_up_to = read_events(context.instance, cursor)
    if not events:
        return dg.SkipReason("No ingestion partition landed since the last tick.")
    finished = finished_runs(context.instance, (event.run_id for event in events))
    landed = landed_days(events, finished, complete_up_to, cursor)
    requests = [kpi_run_request(a, b, landed.cursor) for a, b in day_ranges(landed.days)]
    return dg.SensorResult(run_requests=requests, cursor=str(landed.cursor))
