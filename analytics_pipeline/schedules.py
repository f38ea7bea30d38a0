"""Schedules: the daily run for yesterday, and an intraday run for content that expires.

A schedule asks for as few runs as possible (one per contiguous block of integrations in
partition order, usually exactly one): a Dagster run costs seconds of process start-up while the
step fans integrations out on threads and isolates their failures itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import dagster as dg

from analytics_pipeline.jobs import ingestion_job, range_run_request
from analytics_pipeline.partitions import INTEGRATIONS_PARTITIONS_NAME, contiguous_segments
from analytics_pipeline.platforms import client_class
from analytics_pipeline.resources import WarehouseResource
from analytics_pipeline.warehouse import TrackedIntegration, list_integrations


def _requests_for_day(
    context: dg.ScheduleEvaluationContext,
    warehouse: WarehouseResource,
    day: dt.date,
    reason: str,
    include: Callable[[TrackedIntegration], bool],
) -> list[dg.RunRequest] | dg.SkipReason:
    with warehouse.get_engine().connect() as conn:
        chosen = {
            i.integration_id for i in list_integrations(conn, statuses=["active"]) if include(i)
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
