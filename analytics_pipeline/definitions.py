"""The one `dg.Definitions` of the project (what `dagster dev` and the CLI load)."""

from __future__ import annotations

import dagster as dg

from analytics_pipeline.assets.content import content_assets
from analytics_pipeline.jobs import content_ingestion_job
from analytics_pipeline.resources import PlatformsResource, WarehouseResource
from analytics_pipeline.schedules import daily_content_schedule
from analytics_pipeline.sensors import tracked_integrations_sensor

platforms = PlatformsResource()
platforms.validate_settings()

defs = dg.Definitions(
    assets=[content_assets],
    jobs=[content_ingestion_job],
    schedules=[daily_content_schedule],
    sensors=[tracked_integrations_sensor],
    resources={
        "warehouse": WarehouseResource.from_env(),
        "platforms": platforms,
    },
)
