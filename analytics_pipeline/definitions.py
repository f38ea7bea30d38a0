"""The one `dg.Definitions` of the project (what `dg dev`, `dagster dev` and the CLI load).

The definitions are built when Dagster loads them (`@dg.definitions`), not at import: that is
when the resources read their `ANALYTICS_*` variables (see `defs/resources.py`), so a malformed
value fails `dg check defs` / `dagster definitions validate` with a message naming it.
"""

from __future__ import annotations

import dagster as dg

from analytics_pipeline.defs.assets import social_ingestion
from analytics_pipeline.defs.automation import (
    daily_ingestion_schedule,
    ingestion_job,
    refresh_today_schedule,
    settle_canceled_ingestion_runs,
    settle_failed_ingestion_runs,
    tracked_integrations_sensor,
)
from analytics_pipeline.defs.kpi_assets import kpi_daily
from analytics_pipeline.defs.kpi_automation import kpi_job, kpis_after_ingestion_sensor
from analytics_pipeline.defs.kpi_rollup_assets import kpi_monthly_rollups, kpi_weekly_rollups
from analytics_pipeline.defs.kpi_rollup_automation import (
    ROLLUP_JOBS,
    kpi_rollups_after_daily_sensor,
)
from analytics_pipeline.defs.report_assets import social_media_report
from analytics_pipeline.defs.resources import PlatformsResource, WarehouseResource


def resources_from_env() -> dict[str, dg.ConfigurableResource]:
    """The resources as configured by the environment now (validated: SettingsError if not)."""
    return {"warehouse": WarehouseResource.from_env(), "platforms": PlatformsResource.from_env()}


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[
            social_ingestion,
            kpi_daily,
            social_media_report,
            kpi_weekly_rollups,
            kpi_monthly_rollups,
        ],
        jobs=[ingestion_job, kpi_job, *ROLLUP_JOBS.values()],
        schedules=[daily_ingestion_schedule, refresh_today_schedule],
        sensors=[
            tracked_integrations_sensor,
            kpis_after_ingestion_sensor,
            kpi_rollups_after_daily_sensor,
            settle_canceled_ingestion_runs,
            settle_failed_ingestion_runs,
        ],
        resources=resources_from_env(),
    )
