"""Keeps the `tracked_integrations` dynamic partitions in step with the warehouse table.

New integrations get a partition and a run over their lookback window (so the first daily
metrics have their content); integrations removed from the table lose their partition.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from analytics_pipeline.jobs import content_ingestion_job, range_run_request
from analytics_pipeline.partitions import INTEGRATIONS_PARTITIONS_NAME, SETTINGS
from analytics_pipeline.resources import WarehouseResource
from analytics_pipeline.warehouse import TrackedIntegration, list_integrations


def initial_window(today: dt.date) -> tuple[dt.date, dt.date]:
    """The lookback window ending yesterday, clamped to the partitions' start date."""
    end = today - dt.timedelta(days=1)
    start = max(
        end - dt.timedelta(days=SETTINGS.lookback_days - 1),
        dt.date.fromisoformat(SETTINGS.partitions_start_date),
    )
    return start, end


def plan_partition_sync(
    integrations: list[TrackedIntegration], existing: list[str], today: dt.date
) -> dg.SensorResult | dg.SkipReason:
    wanted = [i.integration_id for i in integrations]
    to_add = [key for key in wanted if key not in set(existing)]
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
    active = {i.integration_id for i in integrations if i.status == "active"}
    runs = [
        range_run_request(f"initial-{key}-{end.isoformat()}", start, end, [key], "new_integration")
        for key in to_add
        if key in active and start <= end
    ]
    return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=requests)


@dg.sensor(
    target=content_ingestion_job,
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
