"""Content asset family: `content_metadata` -> `content_daily_metrics` (date x integration).

The specs live here; `assets/ingestion.py` materializes them (with the account family) in one
subsettable step, which is what gives per-partition fault isolation and lookback order.
"""

import dagster as dg

from analytics_pipeline.ingest import METADATA_ASSET, METRICS_ASSET
from analytics_pipeline.partitions import SETTINGS, build_lookback_mapping, content_partitions

CONTENT_METADATA = dg.AssetKey(METADATA_ASSET)
CONTENT_DAILY_METRICS = dg.AssetKey(METRICS_ASSET)
GROUP = "social_content"

content_metadata_spec = dg.AssetSpec(
    CONTENT_METADATA,
    description=(
        "Content each tracked integration published on the partition's UTC day: one row per "
        "content item in `content_items` (format, caption, normalized hashtags, permalink, "
        "published_at), upserted on (organization_id, integration_id, external_content_id)."
    ),
    partitions_def=content_partitions,
    group_name=GROUP,
    kinds={"python", "sql"},
    skippable=True,
    metadata={"table": "content_items"},
)

content_daily_metrics_spec = dg.AssetSpec(
    CONTENT_DAILY_METRICS,
    description=(
        "Metrics of every content item published in the lookback window ending on the "
        f"partition's day ({SETTINGS.lookback_days} days): one row per content item per day in "
        "`content_metrics_daily`. `value_kind` says what the numbers are: `lifetime_snapshot` "
        "(cumulative total observed that day; only recordable while the day is within "
        "ANALYTICS_SNAPSHOT_WINDOW_DAYS of now) or `daily` (the platform's value for that day). "
        "NULL = the platform did not say; 0 = it said zero."
    ),
    partitions_def=content_partitions,
    group_name=GROUP,
    kinds={"python", "sql"},
    skippable=True,
    deps=[
        dg.AssetDep(
            CONTENT_METADATA, partition_mapping=build_lookback_mapping(SETTINGS.lookback_days)
        )
    ],
    metadata={"table": "content_metrics_daily"},
)
