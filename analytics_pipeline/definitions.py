"""The one `dg.Definitions` of the project (what `dagster dev` and the CLI load)."""

from __future__ import annotations

import dagster as dg

from analytics_pipeline.assets.ingestion import social_ingestion
from analytics_pipeline.jobs import ingestion_job
from analytics_pipeline.resources import PlatformsResource, WarehouseResource
from analytics_pipeline.schedules import daily_ingestion_schedule, intraday_ephemeral_schedule
from analytics_pipeline.sensors import lookback_completion_sensor, tracked_integrations_sensor

platforms = PlatformsResource()
platforms.validate_settings()

defs = dg.Definitions(
    assets=[social_ingestion],
    jobs=[ingestion_job],
    schedules=[daily_ingestion_schedule, intraday_ephemeral_schedule],
    sensors=[tracked_integrations_sensor, lookback_completion_sensor],
    resources={
        "warehouse": WarehouseResource.from_env(),
        "platforms": platforms,
    },
)
