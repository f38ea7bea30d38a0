"""The ingestion assets: their specs, and the one step that materializes them all.

Three assets, each partitioned by UTC day x tracked integration (`partitions.py`):
`content_metadata` -> `content_daily_metrics` (the same partition: metadata D holds the whole
lookback window ending on D), and `account_daily_metrics`.

All specs live in ONE subsettable multi-asset step (any subset can be materialized alone) for
two reasons measured on Dagster 1.13:
- fault isolation inside a multi-partition run: the step records a materialization per partition
  that landed and raises at the end if any failed, so Dagster marks exactly the failed partitions
  FAILED and the rest MATERIALIZED. With separate assets, a failing upstream step would skip the
  downstream step of every integration in the run;
- order: a run that covers metadata and metrics of a day writes the metadata first, and the
  requests behind the run's days are shared (one range listing, one account range request).
"""

import datetime as dt
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline.defs.checks import CHECK_SPECS, run_checks
from analytics_pipeline.defs.partitions import (
    SETTINGS,
    content_partitions,
    group_by_integration,
    step_partition_keys,
)
from analytics_pipeline.defs.resources import PlatformsResource, WarehouseResource
from analytics_pipeline.ingest import (
    IngestOptions,
    IntegrationRequest,
    PartitionOutcome,
    Status,
    ingest_integration,
    unexpected_failure,
)
from analytics_pipeline.platforms.redact import redact
from analytics_pipeline.records import AssetName
from analytics_pipeline.warehouse import tables

CONTENT_METADATA = dg.AssetKey(AssetName.CONTENT_METADATA.value)
CONTENT_DAILY_METRICS = dg.AssetKey(AssetName.CONTENT_DAILY_METRICS.value)
ACCOUNT_DAILY_METRICS = dg.AssetKey(AssetName.ACCOUNT_DAILY_METRICS.value)
CONTENT_GROUP = "social_content"
ACCOUNT_GROUP = "social_accounts"
OWNERS = ["team:data-platform"]


def table_metadata(table: sa.Table) -> dict[str, Any]:
    """The table an asset lands in and its columns (shown on the asset's page)."""
    columns = [
        dg.TableColumn(
            column.name,
            str(column.type),
            constraints=dg.TableColumnConstraints(nullable=bool(column.nullable)),
        )
        for column in table.columns
    ]
    return {"table": table.name, "dagster/column_schema": dg.TableSchema(columns=columns)}


content_metadata_spec = dg.AssetSpec(
    CONTENT_METADATA,
    description=(
        "Content each tracked integration published in the lookback window ending on the "
        f"partition's UTC day ({SETTINGS.lookback_days} days): one row per content item in "
        "`content_items` (format, caption, normalized hashtags, permalink, published_at), "
        "upserted on (organization_id, integration_id, external_content_id). Everything "
        "content_daily_metrics of the same day needs."
    ),
    partitions_def=content_partitions,
    group_name=CONTENT_GROUP,
    kinds={"python", "sql"},
    skippable=True,
    owners=OWNERS,
    metadata=table_metadata(tables.content_items),
)

content_daily_metrics_spec = dg.AssetSpec(
    CONTENT_DAILY_METRICS,
    description=(
        "Metrics of every content item published in the lookback window ending on the "
        f"partition's day ({SETTINGS.lookback_days} days): one row per content item per day in "
        "`content_metrics_daily`. `value_kind` says what the numbers are: `lifetime_snapshot` "
        "(the cumulative total observed on that day: recorded only by the day's own run, or "
        f"before {SETTINGS.snapshot_cutoff_hours:02d}:00 UTC the next morning; a later re-run "
        "never rewrites it) or `daily` (the platform's own value for that day, backfillable). "
        "NULL = the platform did not say; 0 = it said zero."
    ),
    partitions_def=content_partitions,
    group_name=CONTENT_GROUP,
    kinds={"python", "sql"},
    skippable=True,
    deps=[CONTENT_METADATA],  # the same partition: metadata D holds D's whole window
    owners=OWNERS,
    metadata=table_metadata(tables.content_metrics_daily),
)

account_daily_metrics_spec = dg.AssetSpec(
    ACCOUNT_DAILY_METRICS,
    description=(
        "Account-level metrics of each tracked integration: one row per integration per day in "
        "`account_metrics_daily`. `followers_total` is a snapshot of the current total, recorded "
        "only by the day's own run (or early the next morning, see content_daily_metrics; a "
        "later backfill never erases it); new_followers, profile_views, reach, impressions, "
        "views and website_clicks are the platform's own values for that day where it "
        "provides them (backfillable as far as the platform allows). NULL = not reported, "
        "0 = reported zero."
    ),
    partitions_def=content_partitions,
    group_name=ACCOUNT_GROUP,
    kinds={"python", "sql"},
    skippable=True,
    owners=OWNERS,
    metadata=table_metadata(tables.account_metrics_daily),
)


@dg.multi_asset(
    name="social_ingestion",
    specs=[content_metadata_spec, content_daily_metrics_spec, account_daily_metrics_spec],
    check_specs=CHECK_SPECS,
    can_subset=True,
    backfill_policy=dg.BackfillPolicy.single_run(),
    # Transient failures left after the clients' own retries (see PartitionOutcome.retryable).
    retry_policy=dg.RetryPolicy(
        max_retries=SETTINGS.step_max_retries,
        delay=SETTINGS.step_retry_delay_s,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    ),
)
def social_ingestion(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    platforms: PlatformsResource,
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
    selected = context.selected_asset_keys
    engine = warehouse.get_engine()
    partition_keys = step_partition_keys(context) or ()
    failures: list[PartitionOutcome] = []
    if selected:
        options = IngestOptions(
            lookback_days=SETTINGS.lookback_days,
            snapshot_cutoff=dt.timedelta(hours=SETTINGS.snapshot_cutoff_hours),
            partitions_start=SETTINGS.partitions_start_date,
            run_id=context.run.run_id,
        )
        for outcome in _run_integrations(context, engine, platforms, options, partition_keys):
            event = _event_for(outcome)
            if event is not None:
                yield event
            if outcome.status is Status.FAILED:
                failures.append(outcome)
    yield from run_checks(engine, context.selected_asset_check_keys, partition_keys)
    if failures:
        raise _failure_for(failures)


def _run_integrations(
    context: dg.AssetExecutionContext,
    engine: sa.Engine,
    platforms: PlatformsResource,
    options: IngestOptions,
    partition_keys: Sequence[str],
) -> Iterator[PartitionOutcome]:
    """Each integration on a worker thread (bounded). Every partition's outcome is passed back
    through a queue the moment it is committed, so this (the step's) thread records it in
    Dagster while the workers are waiting on the platforms, instead of after a whole
    integration is done."""
    selected = context.selected_asset_keys
    requests = [
        IntegrationRequest(
            integration_id=integration_id,
            days=days,
            metadata=CONTENT_METADATA in selected,
            metrics=CONTENT_DAILY_METRICS in selected,
            account=ACCOUNT_DAILY_METRICS in selected,
        )
        for integration_id, days in group_by_integration(partition_keys).items()
    ]
    context.log.info(
        f"Ingesting {len(requests)} integration(s), {sum(len(r.days) for r in requests)} "
        f"integration-day(s), with up to {platforms.max_concurrency} at a time."
    )
    results: queue.SimpleQueue[PartitionOutcome | _WorkerDone] = queue.SimpleQueue()
    stopping = threading.Event()

    def work(request: IntegrationRequest) -> None:
        reported: set[tuple[AssetName, dt.date]] = set()
        error: Exception | None = None
        try:
            for outcome in ingest_integration(engine, platforms.create_client, request, options):
                reported.add((outcome.asset, outcome.day))
                results.put(outcome)
                if stopping.is_set():
                    break
        except Exception as exc:  # a bug or a warehouse outage must not hide the others
            error = exc
        results.put(_WorkerDone(request, reported, error))

    pool = ThreadPoolExecutor(max_workers=platforms.max_concurrency)
    try:
        for request in requests:
            pool.submit(work, request)
        running = len(requests)
        while running:
            item = results.get()
            if isinstance(item, PartitionOutcome):
                yield item
                continue
            running -= 1
            if item.error is not None:
                context.log.error(
                    f"Integration {item.request.integration_id}: unexpected "
                    f"{type(item.error).__name__}: {redact(str(item.error))}"
                )
                yield from unexpected_failure(item.request, item.error, item.reported)
    finally:
        # Left early (the run is being terminated): integrations not started are dropped and
        # running ones stop after the partition they are writing, so the run ends promptly.
        stopping.set()
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class _WorkerDone:
    """A worker finished one integration; `error` if it stopped on an unexpected exception."""

    request: IntegrationRequest
    reported: set[tuple[AssetName, dt.date]]
    error: Exception | None


def _event_for(outcome: PartitionOutcome) -> dg.AssetMaterialization | None:
    if outcome.status is not Status.MATERIALIZED:
        return None
    return dg.AssetMaterialization(
        asset_key=dg.AssetKey(outcome.asset.value),
        partition=outcome.partition.key,
        metadata={**_plottable(outcome.metadata), "dagster/row_count": outcome.rows},
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
                sorted(f"{o.asset}:{o.partition.key}" for o in failures)
            ),
            "retryable": retryable,
        },
        allow_retries=retryable,
    )
