"""Automation: the ingestion job, the schedules that drive the daily runs, and the sensors.

- `ingestion_job`: the three ingestion assets for a range of days x integrations.
- Schedules ask for few runs: one per contiguous block of integrations of one platform in
  partition order, of at most ANALYTICS_MAX_INTEGRATIONS_PER_RUN integrations (a Dagster run
  costs seconds of process start-up while the step fans integrations out on threads and
  isolates their failures itself; past that size the run launcher can place runs on separate
  machines). Every run carries its platform in `analytics/platform`, which the run queue
  limits per platform (dagster.yaml).
  `daily_ingestion_schedule` runs yesterday at 01:30 UTC (its final values and end-of-day
  snapshot); `refresh_today_schedule` runs the current snapshot day every
  ANALYTICS_REFRESH_INTERVAL_HOURS (fresh totals; live stories).
- `tracked_integrations_sensor` keeps the `tracked_integrations` dynamic partitions in step with
  the warehouse table: new integrations get a partition and a run over their lookback window
  (ending on the current snapshot day); removed integrations lose their partition.
- `settle_canceled_ingestion_runs`, `settle_failed_ingestion_runs` (on by default) complete the
  account of an ingestion run that ended CANCELED or FAILURE without the step's own
  (`settle.py`): committed partitions materialized, a failure row for each of the others.

Metrics D depends on metadata D only (metadata D holds D's whole window), so a backfill runs
exactly the partitions selected, and no repair sensor is needed for ordering.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from analytics_pipeline.defs.assets import (
    ACCOUNT_DAILY_METRICS,
    CONTENT_DAILY_METRICS,
    CONTENT_METADATA,
)
from analytics_pipeline.defs.partitions import (
    INTEGRATIONS_PARTITIONS_NAME,
    SETTINGS,
    RunBatch,
    batch_run_tags,
    plan_run_batches,
)
from analytics_pipeline.defs.resources import WarehouseResource
from analytics_pipeline.defs.settle import settle_run
from analytics_pipeline.ingest import snapshot_day
from analytics_pipeline.records import IntegrationStatus
from analytics_pipeline.warehouse import TrackedIntegration, list_integrations

ingestion_job = dg.define_asset_job(
    "ingestion_job",
    selection=dg.AssetSelection.assets(
        CONTENT_METADATA, CONTENT_DAILY_METRICS, ACCOUNT_DAILY_METRICS
    ),
    description="Content metadata, then content and account metrics, for a range of days x "
    "integrations.",
    # One process per run: the job is one multi-asset step (threads inside it), so step
    # subprocesses would only add start-up time, and a run worker that dies would leave an
    # orphaned step process still writing after its run was marked failed.
    executor_def=dg.in_process_executor,
)


def batch_run_request(
    run_key: str, start: dt.date, end: dt.date, batch: RunBatch, reason: str
) -> dg.RunRequest:
    """One run covering days start..end for a batch of integrations (`plan_run_batches`)."""
    return dg.RunRequest(
        run_key=run_key,
        tags={**batch_run_tags(start, end, batch), "analytics/reason": reason},
    )


# --- schedules -------------------------------------------------------------------------------


def _requests_for_day(
    context: dg.ScheduleEvaluationContext,
    warehouse: WarehouseResource,
    day: dt.date,
    reason: str,
    tick: str,
) -> list[dg.RunRequest] | dg.SkipReason:
    """Runs for `day` x every active integration; `tick` makes the run keys unique."""
    with warehouse.get_engine().connect() as conn:
        active = list_integrations(conn, statuses=[IntegrationStatus.ACTIVE])
    platform_of = {i.integration_id: i.platform for i in active}
    # Partition order (the order integrations were added) is what a range run expands over.
    ordered = list(context.instance.get_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME))
    batches = plan_run_batches(ordered, platform_of, platform_of, SETTINGS.max_integrations_per_run)
    if not batches:
        return dg.SkipReason(f"No active integration to run for {day.isoformat()} ({reason}).")
    return [
        batch_run_request(f"{reason}-{tick}-{batch.integration_ids[0]}", day, day, batch, reason)
        for batch in batches
    ]


@dg.schedule(
    cron_schedule="30 1 * * *",
    execution_timezone="UTC",
    target=ingestion_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 01:30 UTC: yesterday's content, metrics and account metrics for every "
    "active integration. Lifetime totals observed now are yesterday's end-of-day snapshot "
    "(the snapshot cutoff, ANALYTICS_SNAPSHOT_CUTOFF_HOURS, is at least 02:00 UTC).",
)
def daily_ingestion_schedule(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
) -> list[dg.RunRequest] | dg.SkipReason:
    yesterday = context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    return _requests_for_day(context, warehouse, yesterday, "daily", yesterday.isoformat())


@dg.schedule(
    cron_schedule=f"0 */{SETTINGS.refresh_interval_hours} * * *",
    execution_timezone="UTC",
    target=ingestion_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=f"Every {SETTINGS.refresh_interval_hours} h (ANALYTICS_REFRESH_INTERVAL_HOURS): "
    "the current day's partitions of every active integration, so the totals dashboards read "
    "are never older than that, and content that expires within a day (Instagram stories) is "
    "captured while live. The day keeps its latest observation.",
)
def refresh_today_schedule(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
) -> list[dg.RunRequest] | dg.SkipReason:
    when = context.scheduled_execution_time.astimezone(dt.UTC)
    day = snapshot_day(when, dt.timedelta(hours=SETTINGS.snapshot_cutoff_hours))
    return _requests_for_day(context, warehouse, day, "refresh", f"{when:%Y-%m-%dT%H%M}")


# --- sensors ---------------------------------------------------------------------------------


def initial_window(now: dt.datetime) -> tuple[dt.date, dt.date]:
    """A new integration's first run: the lookback window ending on the current snapshot day
    (so its first lifetime snapshot is recorded at once), not before the partitions' start."""
    end = snapshot_day(now, dt.timedelta(hours=SETTINGS.snapshot_cutoff_hours))
    start = max(end - dt.timedelta(days=SETTINGS.lookback_days - 1), SETTINGS.partitions_start_date)
    return start, end


def plan_partition_sync(
    integrations: list[TrackedIntegration], existing: list[str], now: dt.datetime
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
    start, end = initial_window(now)
    active = {i.integration_id for i in integrations if i.status == IntegrationStatus.ACTIVE}
    runs = [
        batch_run_request(
            f"initial-{i.integration_id}-{end.isoformat()}",
            start,
            end,
            RunBatch(i.platform, (i.integration_id,)),
            "new_integration",
        )
        for i in integrations
        if i.integration_id in to_add and i.integration_id in active and start <= end
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
    return plan_partition_sync(integrations, existing, dt.datetime.now(dt.UTC))


def _settle(context: dg.RunStatusSensorContext, warehouse: WarehouseResource) -> dg.SkipReason:
    settlement = settle_run(
        context.instance,
        warehouse.get_engine(),
        context.dagster_run.run_id,
        worker_exit_wait_s=SENSOR_WORKER_EXIT_WAIT_S,
    )
    if settlement is None:
        return dg.SkipReason("Not an ingestion run that ended without its account.")
    done = (
        f"run {settlement.run_id}: {len(settlement.materialized)} committed partition(s) "
        f"materialized, {len(settlement.failed)} failure row(s) written"
    )
    if settlement.unrecorded:
        done += f", {len(settlement.unrecorded)} row(s) NOT written (warehouse unreachable)"
    context.log.info(done)
    return dg.SkipReason(done)


SENSOR_WORKER_EXIT_WAIT_S = 10.0
# The settle sensors watch every job of the code location: backfills launched from the UI or
# GraphQL run the implicit asset job, not ingestion_job; `settle_run` keeps the ingestion runs.
_SETTLE_DESCRIPTION = (
    "Completes the account of an ingestion run that ended {how}: partitions it committed get "
    "their materialization, the others of the run an ingestion_failures row (see defs/settle.py)."
)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.CANCELED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=_SETTLE_DESCRIPTION.format(how="CANCELED (Terminate)"),
)
def settle_canceled_ingestion_runs(
    context: dg.RunStatusSensorContext, warehouse: WarehouseResource
) -> dg.SkipReason:
    return _settle(context, warehouse)


@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=_SETTLE_DESCRIPTION.format(how="FAILURE (a crashed run worker, a failed step)"),
)
def settle_failed_ingestion_runs(
    context: dg.RunFailureSensorContext, warehouse: WarehouseResource
) -> dg.SkipReason:
    return _settle(context, warehouse)
