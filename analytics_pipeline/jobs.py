"""The ingestion job and the run requests schedules and sensors build for it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import dagster as dg

from analytics_pipeline.assets.account import ACCOUNT_DAILY_METRICS
from analytics_pipeline.assets.content import CONTENT_DAILY_METRICS, CONTENT_METADATA
from analytics_pipeline.partitions import range_run_tags

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
