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
from collections.abc import Iterator
from typing import Any

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline.defs.checks import CHECK_SPECS, run_checks
from analytics_pipeline.defs.integration_run import STOPS, IntegrationRun, interrupted_before
from analytics_pipeline.defs.partitions import SETTINGS, content_partitions, step_partition_keys
from analytics_pipeline.defs.resources import PlatformsResource, WarehouseResource
from analytics_pipeline.ingest import (
    FAILURE_ROW_PATIENCE_S,
    IngestOptions,
    PartitionOutcome,
    Status,
    record_failures,
)
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
    if interrupted_before(context):
        raise dg.Failure(
            description="The run was stopped during an earlier attempt of this step: not retried.",
            allow_retries=False,
        )
    selected = context.selected_asset_keys
    engine = warehouse.get_engine()
    partition_keys = step_partition_keys(context) or ()
    failures: list[PartitionOutcome] = []
    stopped = interrupted = False
    if selected:
        options = IngestOptions(
            lookback_days=SETTINGS.lookback_days,
            snapshot_cutoff=dt.timedelta(hours=SETTINGS.snapshot_cutoff_hours),
            partitions_start=SETTINGS.partitions_start_date,
            run_id=context.run.run_id,
        )
        ingestion = IntegrationRun(context, engine, platforms, options)
        warned: set[str] = set()  # integrations whose token warning is on a materialization
        try:
            for outcome in ingestion.outcomes(partition_keys):
                event = _event_for(outcome, _first_warning(ingestion, outcome, warned))
                if event is not None:
                    yield event
                if outcome.status is Status.FAILED:
                    failures.append(outcome)
        except STOPS:
            # Dagster's interrupt landed in the step's code outside the run's wait (`outcomes`
            # stopped its workers on the way out): not a retry; the partitions not reported
            # here are accounted for once the run ended (defs/settle.py).
            interrupted = True
        stopped = ingestion.stopped or interrupted
    if not stopped:
        try:
            yield from run_checks(engine, context.selected_asset_check_keys, partition_keys)
        except sa.exc.SQLAlchemyError as exc:
            if not failures:
                raise
            # The warehouse went away: the partitions' failures below matter more than checks.
            context.log.error(f"Asset checks not evaluated: {type(exc).__name__} (warehouse).")
    if failures or interrupted:
        patience = 0.0 if stopped else FAILURE_ROW_PATIENCE_S
        unrecorded = record_failures(engine, failures, context.run.run_id, patience_s=patience)
        raise _failure_for(failures, unrecorded, stopped=stopped, interrupted=interrupted)


def _first_warning(
    ingestion: IntegrationRun, outcome: PartitionOutcome, warned: set[str]
) -> str | None:
    """The integration's token warning for its first materialization of the run, else None."""
    warning = ingestion.token_warnings.get(outcome.integration_id)
    if warning is None or outcome.status is not Status.MATERIALIZED:
        return None
    if outcome.integration_id in warned:
        return None
    warned.add(outcome.integration_id)
    return warning


def _event_for(
    outcome: PartitionOutcome, token_warning: str | None = None
) -> dg.AssetMaterialization | None:
    if outcome.status is not Status.MATERIALIZED:
        return None
    extra = {} if token_warning is None else {"token_warning": token_warning}
    return dg.AssetMaterialization(
        asset_key=dg.AssetKey(outcome.asset.value),
        partition=outcome.partition.key,
        metadata={**_plottable(outcome.metadata), **extra, "dagster/row_count": outcome.rows},
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


def _failure_for(
    failures: list[PartitionOutcome],
    unrecorded: list[PartitionOutcome],
    *,
    stopped: bool,
    interrupted: bool = False,
) -> dg.Failure:
    """The step's failure: never retried after a stop; its metadata is what the CLI reports
    (`failed_partitions`, `failure_classes`, `stopped`, `without_failure_row`)."""
    retryable = not stopped and any(outcome.retryable for outcome in failures)
    by_integration: dict[str, str] = {}
    by_class: dict[str, int] = {}
    for outcome in failures:
        by_integration.setdefault(outcome.integration_id, outcome.message or "")
        by_class[failure_class(outcome)] = by_class.get(failure_class(outcome), 0) + 1
    lines = [f"- {integration}: {message}" for integration, message in by_integration.items()]
    classes = ", ".join(f"{count} {name}" for name, count in sorted(by_class.items()))
    head = "The run was stopped. " if stopped else ""
    rest = (
        "the others are accounted for after the run (materialized if committed, else a "
        "`stopped` row)."
        if interrupted
        else "every other partition of this run landed and is marked materialized."
    )
    missing = (
        f"\n{len(unrecorded)} of them have NO ingestion_failures row (the warehouse could not "
        "be reached): see `without_failure_row`."
        if unrecorded
        else ""
    )
    return dg.Failure(
        description=(
            f"{head}{len(failures)} partition(s) of {len(by_integration)} integration(s) "
            f"failed ({classes}); {rest}{missing}\n" + "\n".join(lines)
        ),
        metadata={
            "failed_partitions": dg.MetadataValue.json(sorted(_label(o) for o in failures)),
            "failure_classes": dg.MetadataValue.json(
                {_label(o): failure_class(o) for o in sorted(failures, key=_label)}
            ),
            "without_failure_row": dg.MetadataValue.json(sorted(_label(o) for o in unrecorded)),
            "stopped": stopped,
            "retryable": retryable,
        },
        allow_retries=retryable,
    )


def failure_class(outcome: PartitionOutcome) -> str:
    """How a failed partition is reported: its error class, `transient (deferred)` when it
    waits for a later run (wait budget spent, quota)."""
    name = outcome.error_class.value if outcome.error_class else "unknown"
    if outcome.status is Status.FAILED and name == "transient" and not outcome.retryable:
        return "transient (deferred)"
    return name


def _label(outcome: PartitionOutcome) -> str:
    return f"{outcome.asset}:{outcome.partition.key}"
