"""Content assets: `content_metadata` -> `content_daily_metrics`, partitioned by day x integration.

Both assets live in ONE multi-asset step (subsettable, so either can be materialized alone) for
two reasons measured on Dagster 1.13:
- fault isolation inside a multi-partition run: the step records a materialization per partition
  that landed and raises at the end if any failed, so Dagster marks exactly the failed partitions
  FAILED and the rest MATERIALIZED. With two separate assets, a failing upstream step would skip
  the metrics of every integration in the run;
- lookback order: a backfill always puts metadata and metrics of the same partitions in the same
  run, and inside it the metadata days are written before any metrics day is read.
"""

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline.checks import CONTENT_CHECK_SPECS, run_content_checks
from analytics_pipeline.ingest import (
    METADATA_ASSET,
    METRICS_ASSET,
    IngestOptions,
    IntegrationRequest,
    PartitionOutcome,
    Status,
    ingest_integration,
)
from analytics_pipeline.partitions import (
    SETTINGS,
    build_lookback_mapping,
    content_partitions,
    group_by_integration,
)
from analytics_pipeline.resources import PlatformsResource, WarehouseResource

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


@dg.multi_asset(
    name="content_assets",
    specs=[content_metadata_spec, content_daily_metrics_spec],
    check_specs=CONTENT_CHECK_SPECS,
    can_subset=True,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=dg.RetryPolicy(
        max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    ),
)
def content_assets(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    platforms: PlatformsResource,
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
    selected = context.selected_asset_keys
    engine = warehouse.get_engine()
    failures: list[PartitionOutcome] = []
    if selected:
        options = IngestOptions(
            lookback_days=SETTINGS.lookback_days,
            snapshot_window_days=SETTINGS.snapshot_window_days,
            partitions_start=dt.date.fromisoformat(SETTINGS.partitions_start_date),
            run_id=context.run.run_id,
        )
        for outcome in _run_integrations(context, engine, platforms, options):
            event = _event_for(outcome)
            if event is not None:
                yield event
            if outcome.status is Status.FAILED:
                failures.append(outcome)
    yield from run_content_checks(engine, context.selected_asset_check_keys)
    if failures:
        raise _failure_for(failures)


def _run_integrations(
    context: dg.AssetExecutionContext,
    engine: sa.Engine,
    platforms: PlatformsResource,
    options: IngestOptions,
) -> Iterator[PartitionOutcome]:
    """Each integration on a worker thread (bounded); outcomes come back as they finish."""
    selected = context.selected_asset_keys
    requests = [
        IntegrationRequest(
            integration_id=integration_id,
            days=days,
            metadata=CONTENT_METADATA in selected,
            metrics=CONTENT_DAILY_METRICS in selected,
        )
        for integration_id, days in group_by_integration(context.partition_keys).items()
    ]
    context.log.info(
        f"Ingesting {len(requests)} integration(s) x {len(context.partition_keys)} partition "
        f"key(s) with up to {SETTINGS.max_concurrency} at a time."
    )
    with ThreadPoolExecutor(max_workers=SETTINGS.max_concurrency) as pool:
        futures = [
            pool.submit(ingest_integration, engine, platforms.create_client, request, options)
            for request in requests
        ]
        for future in as_completed(futures):
            yield from future.result()


def _event_for(outcome: PartitionOutcome) -> dg.AssetMaterialization | None:
    if outcome.status is not Status.MATERIALIZED:
        return None
    return dg.AssetMaterialization(
        asset_key=dg.AssetKey(outcome.asset),
        partition=outcome.partition_key,
        metadata=_plottable(outcome.metadata),
    )


def _plottable(details: dict) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for name, value in details.items():
        if isinstance(value, bool) or value is None:
            metadata[name] = dg.MetadataValue.text(str(value))
        elif isinstance(value, int | float | str):
            metadata[name] = value
        else:
            metadata[name] = dg.MetadataValue.json(value)
    return metadata


def _failure_for(failures: list[PartitionOutcome]) -> dg.Failure:
    retryable = any(outcome.retryable for outcome in failures)
    by_integration: dict[str, str] = {}
    for outcome in failures:
        by_integration.setdefault(outcome.integration_id, outcome.message or "")
    lines = [f"- {integration}: {message}" for integration, message in by_integration.items()]
    return dg.Failure(
        description=(
            f"{len(failures)} partition(s) of {len(by_integration)} integration(s) failed; "
            "every other partition of this run landed and is marked materialized.\n"
            + "\n".join(lines)
        ),
        metadata={
            "failed_partitions": dg.MetadataValue.json(
                sorted(f"{o.asset}:{o.partition_key}" for o in failures)
            ),
            "retryable": retryable,
        },
        allow_retries=retryable,
    )
