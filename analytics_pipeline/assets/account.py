"""Account asset family: `account_daily_metrics` (date x integration)."""

import dagster as dg

from analytics_pipeline.ingest import ACCOUNT_ASSET
from analytics_pipeline.partitions import content_partitions

ACCOUNT_DAILY_METRICS = dg.AssetKey(ACCOUNT_ASSET)

account_daily_metrics_spec = dg.AssetSpec(
    ACCOUNT_DAILY_METRICS,
    description=(
        "Account-level metrics of each tracked integration: one row per integration per day in "
        "`account_metrics_daily`. `followers_total` is a snapshot of the current total, recorded "
        "only while the day is within ANALYTICS_SNAPSHOT_WINDOW_DAYS of now (a later backfill "
        "never erases it); new_followers, profile_views, reach, impressions, views and "
        "website_clicks are the platform's own values for that day where it provides them "
        "(backfillable as far as the platform allows). NULL = not reported, 0 = reported zero."
    ),
    partitions_def=content_partitions,
    group_name="social_accounts",
    kinds={"python", "sql"},
    skippable=True,
    metadata={"table": "account_metrics_daily"},
)
