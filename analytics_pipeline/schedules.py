"""The daily schedule: yesterday's partitions for every active integration, in one run.

One run (not one per integration) because a Dagster run costs seconds of process start-up
while the step fans the integrations out on threads and isolates their failures itself.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from analytics_pipeline.jobs import content_ingestion_job, range_run_request
from analytics_pipeline.partitions import INTEGRATIONS_PARTITIONS_NAME
from analytics_pipeline.resources import WarehouseResource
from analytics_pipeline.warehouse import list_integrations


@dg.schedule(
    cron_schedule="30 1 * * *",
    execution_timezone="UTC",
    target=content_ingestion_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 01:30 UTC: yesterday's content and metrics for every active integration.",
)
def daily_content_schedule(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource
) -> dg.RunRequest | dg.SkipReason:
    yesterday = context.scheduled_execution_time.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    with warehouse.get_engine().connect() as conn:
        active = {i.integration_id for i in list_integrations(conn, statuses=["active"])}
    # Partition order (the order integrations were added) is what a range run expands over.
    ordered = [
        key
        for key in context.instance.get_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME)
        if key in active
    ]
    if not ordered:
        return dg.SkipReason("No active integration has a partition yet.")
    return range_run_request(
        f"daily-{yesterday.isoformat()}", yesterday, yesterday, ordered, "daily_schedule"
    )
