"""Automation: the ingestion job, the schedules that drive the daily runs, and the sensors.

- `ingestion_job`: the three ingestion assets for a range of days x integrations.
- Schedules ask for as few runs as possible (one per contiguous block of integrations in
  partition order, usually exactly one): a Dagster run costs seconds of process start-up while the
  step fans integrations out on threads and isolates their failures itself.
  `daily_ingestion_schedule` runs yesterday at 01:30 UTC; `intraday_ephemeral_schedule` runs today
  at 23:15 UTC for platforms whose content expires within a day (Instagram stories).
- `tracked_integrations_sensor` keeps the `tracked_integrations` dynamic partitions in step with
  the warehouse table: new integrations get a partition and a run over their lookback window (so
  the first daily metrics have their content); removed integrations lose their partition.
- `lookback_completion_sensor` re-runs a metrics day whose lookback window was incomplete when it
  ran (see `plan_lookback_reruns`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import dagster as dg

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.assets import (
    ACCOUNT_DAILY_METRICS,
    CONTENT_DAILY_METRICS,
    CONTENT_METADATA,
)
from analytics_pipeline.defs.partitions import (
    INTEGRATIONS_PARTITIONS_NAME,
    SETTINGS,
    contiguous_segments,
    range_run_tags,
)
from analytics_pipeline.defs.resources import WarehouseResource
from analytics_pipeline.platforms import client_class
from analytics_pipeline.records import AssetName, IntegrationStatus, date_range
from analytics_pipeline.warehouse import TrackedIntegration, list_integrations

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.assets(
        CONTENT_METADATA, CONTENT_DAILY_METRICS, ACCOUNT_DAILY_METRICS
    ),
    description="Content metadata, then content and account metrics, for a range of days x "
    "integrations.",
)


def range_run_request(
    run_key: str, start: dt.date, end: dt.date, integration_ids: Sequence[str], reason: str
) -> dg.RunRequest:
    """One run covering days start..end for integrations listed in partition (added) order."""
    return dg.RunRequest(
        run_key=run_key,
        tags={**range_run_tags(start, end, integration_ids), "analytics/reason": reason},
    )


# --- schedules -------------------------------------------------------------------------------


def _requests_for_day(
    context: dg.ScheduleEvaluationContext,
    warehouse: WarehouseResource,
    day: dt.date,
    reason: str,
    include: Callable[[TrackedIntegration], bool],
) -> list[dg.RunRequest] | dg.SkipReason:
    with warehouse.get_engine().connect() as conn:
        chosen = {
            i.integration_id
            for i in list_integrations(conn, statuses=[IntegrationStatus.ACTIVE])
            if include(i)
        }
    # Partition order (the order integrations were added) is what a range run expands over.
    ordered = list(context.instance.get_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME))
    segments = contiguous_segments(ordered, chosen)
    if not segments:
        return dg.SkipReason(f"No active integration to run for {day.isoformat()} ({reason}).")
    return [
        range_run_request(f"{reason}-{day.isoformat()}-{segment[0]}", day, day, segment, reason)
        for segment in segments
    ]


@dg.schedule(
    cron_schedule="30 1 * * *",
    execution_timezone="UTC",
    target=ingestion_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 01:30 UTC: yesterday's content, metrics and account metrics for every "
    "active integration (lifetime totals observed now are yesterday's end-of-day snapshot).",
)
def daily_ingestion_schedule(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
) -> list[dg.RunRequest] | dg.SkipReason:
    yesterday = context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    return _requests_for_day(context, warehouse, yesterday, "daily", lambda _: True)


def _has_ephemeral_content(integration: TrackedIntegration) -> bool:
    return client_class(integration.platform).has_ephemeral_content


@dg.schedule(
    cron_schedule="15 23 * * *",
    execution_timezone="UTC",
    target=ingestion_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 23:15 UTC: today's partition for integrations whose platform has content "
    "that expires within a day (Instagram stories), captured while it is still live.",
)
def intraday_ephemeral_schedule(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
) -> list[dg.RunRequest] | dg.SkipReason:
    today = context.scheduled_execution_time.astimezone(dt.UTC).date()
    return _requests_for_day(context, warehouse, today, "intraday", _has_ephemeral_content)


# --- sensors ---------------------------------------------------------------------------------


def initial_window(today: dt.date) -> tuple[dt.date, dt.date]:
    """The lookback window ending yesterday, clamped to the partitions' start date."""
    end = today - dt.timedelta(days=1)
    start = max(end - dt.timedelta(days=SETTINGS.lookback_days - 1), SETTINGS.partitions_start_date)
    return start, end


def plan_partition_sync(
    integrations: list[TrackedIntegration], existing: list[str], today: dt.date
) -> dg.SensorResult | dg.SkipReason:
    wanted = [i.integration_id for i in integrations]
    present = set(existing)
    to_add = [key for key in wanted if key not in present]
    to_remove = sorted(set(existing) - set(wanted))
    if not to_add and not to_remove:
        return dg.SkipReason(f"{len(existing)} integration partition(s), all in step.")
    requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if to_add:
        requests.append(
            dg.AddDynamicPartitionsRequest(INTEGRATIONS_PARTITIONS_NAME, partition_keys=to_add)
        )
    if to_remove:
        requests.append(
            dg.DeleteDynamicPartitionsRequest(
                INTEGRATIONS_PARTITIONS_NAME, partition_keys=to_remove
            )
        )
    start, end = initial_window(today)
    active = {i.integration_id for i in integrations if i.status == IntegrationStatus.ACTIVE}
    runs = [
        range_run_request(f"initial-{key}-{end.isoformat()}", start, end, [key], "new_integration")
        for key in to_add
        if key in active and start <= end
    ]
    return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=requests)


@dg.sensor(
    target=ingestion_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Adds/removes integration partitions to match tracked_integrations and "
    "requests the initial lookback-window run of each new integration.",
)
def tracked_integrations_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    with warehouse.get_engine().connect() as conn:
        integrations = list_integrations(conn)
    existing = list(context.instance.get_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME))
    return plan_partition_sync(integrations, existing, dt.datetime.now(dt.UTC).date())


def plan_lookback_reruns(
    metrics_loads: list[wh.PartitionLoad],
    metadata_loads: list[wh.PartitionLoad],
    lookback_days: int,
) -> list[tuple[str, dt.date, str]]:
    """Metrics partitions written while part of their lookback window's metadata was missing,
    whose window has landed since: (integration_id, day, run_key) to re-run.

    This happens when a backfill is split by date (Dagster splits a multi-partition single-run
    backfill by its smaller dimension) and the runs of two dates overlap.
    """
    landed: dict[str, dict[dt.date, dt.datetime]] = {}
    for load in metadata_loads:
        landed.setdefault(load.integration_id, {})[load.partition_date] = load.loaded_at
    reruns = []
    for load in metrics_loads:
        if not load.details.get("recordable", True) or not load.details.get(
            "lookback_days_missing"
        ):
            continue
        window = date_range(
            load.partition_date - dt.timedelta(days=lookback_days - 1), load.partition_date
        )
        days_landed = landed.get(load.integration_id, {})
        start = SETTINGS.partitions_start_date
        needed = [day for day in window if day >= start]
        if all(day in days_landed for day in needed) and any(
            days_landed[day] > load.loaded_at for day in needed
        ):
            stamp = int(load.loaded_at.timestamp())
            key = f"lookback-{load.integration_id}-{load.partition_date}-{stamp}"
            reruns.append((load.integration_id, load.partition_date, key))
    return reruns


@dg.sensor(
    target=ingestion_job,
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Re-runs content_daily_metrics for a day whose lookback-window metadata was "
    "incomplete when it ran and has landed since (overlapping split backfill runs).",
)
def lookback_completion_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    today = dt.datetime.now(dt.UTC).date()
    since = today - dt.timedelta(days=SETTINGS.snapshot_window_days + 1)
    with warehouse.get_engine().connect() as conn:
        metrics_loads = wh.recent_partition_loads(
            conn, asset=AssetName.CONTENT_DAILY_METRICS, since=since
        )
        metadata_loads = wh.recent_partition_loads(
            conn,
            asset=AssetName.CONTENT_METADATA,
            since=since - dt.timedelta(days=SETTINGS.lookback_days),
        )
    reruns = plan_lookback_reruns(metrics_loads, metadata_loads, SETTINGS.lookback_days)
    if not reruns:
        return dg.SkipReason("Every recent metrics partition saw its whole lookback window.")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=key,
                asset_selection=[CONTENT_DAILY_METRICS],
                tags={**range_run_tags(day, day, [integration_id]), "analytics/reason": "lookback"},
            )
            for integration_id, day, key in reruns
        ]
    )
