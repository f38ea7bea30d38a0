"""Ingestion of one tracked integration over a set of days (plain Python, no Dagster context).

The Dagster step (defs/assets.py) hands each integration of a run to `ingest_integration` on a
worker thread and turns the returned `PartitionOutcome`s into per-partition events. Each
partition is written in its own transaction; the requests behind them are shared:
- content_metadata D records the content published in the lookback window ending on D (so
  metrics D needs metadata D only). One range listing serves every metadata day of the run.
- content_daily_metrics D: the metrics of the items in that window, for D. Lifetime totals
  (Meta, X) are a snapshot stamped on the day they were observed (`snapshot_day`): only the
  partition of that day records them; an older partition re-run later changes nothing.
- account_daily_metrics: one range request for the run's days; the followers total (a
  snapshot) only on `snapshot_day`.
Order: every metadata day first, then the metrics days (which read them), then account days.

Error policy (shared/platform-facts.md):
- permanent credential error: the integration becomes needs_reauth with the reason, a failure row
  is written, its remaining partitions fail without another API call, and nothing retries it;
- transient error left after the client's own retries: the partition fails (the Dagster
  RetryPolicy retries the step) and the integration's remaining partitions are not attempted now;
- a permanent error on one content item: the item is skipped, the rest of the day lands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from analytics_pipeline import credentials
from analytics_pipeline import warehouse as wh
from analytics_pipeline.platforms.base import Account, PlatformClient, PlatformError
from analytics_pipeline.platforms.redact import redact
from analytics_pipeline.records import (
    AccountMetrics,
    AssetName,
    ContentItem,
    ContentPartition,
    ErrorClass,
    IntegrationStatus,
)
from analytics_pipeline.settings import SettingsError

# A transient error that clears later than this (a daily quota, a usage cap) is not retried by
# Dagster within the run: the next scheduled run picks the partitions up again.
MAX_IN_RUN_RETRY_AFTER_S = 15 * 60


class Status(StrEnum):
    MATERIALIZED = "materialized"
    FAILED = "failed"
    SKIPPED = "skipped"  # e.g. a paused integration: neither done nor failed


@dataclass(frozen=True)
class PartitionOutcome:
    asset: AssetName
    partition: ContentPartition
    status: Status
    metadata: dict[str, Any] = field(default_factory=dict)
    error_class: ErrorClass | None = None
    message: str | None = None
    retry_after: float | None = None
    rows: int = 0  # rows the partition holds after a materialization

    @property
    def day(self) -> dt.date:
        return self.partition.day

    @property
    def integration_id(self) -> str:
        return self.partition.integration_id

    @property
    def retryable(self) -> bool:
        """Worth retrying within this run (Dagster RetryPolicy)."""
        return (
            self.status is Status.FAILED
            and self.error_class is ErrorClass.TRANSIENT
            and (self.retry_after or 0) <= MAX_IN_RUN_RETRY_AFTER_S
        )


@dataclass(frozen=True)
class IngestOptions:
    lookback_days: int
    snapshot_cutoff: dt.timedelta
    partitions_start: dt.date
    run_id: str | None = None
    now: Callable[[], dt.datetime] = field(default=lambda: utc_now())

    def window_start(self, day: dt.date) -> dt.date:
        """First day of the lookback window ending on `day` (not before the partitions)."""
        return max(day - dt.timedelta(days=self.lookback_days - 1), self.partitions_start)


@dataclass(frozen=True)
class IntegrationRequest:
    integration_id: str
    days: Sequence[dt.date]
    metadata: bool
    metrics: bool
    account: bool = False


_STOPS_INTEGRATION = frozenset(
    {ErrorClass.PERMANENT_CREDENTIAL, ErrorClass.PERMANENT_CONFIG, ErrorClass.TRANSIENT}
)


class _StopIntegration(Exception):
    """Raised inside one integration's work to fail its remaining partitions."""

    def __init__(self, error: PlatformError) -> None:
        super().__init__(str(error))
        self.error = error


def utc_now() -> dt.datetime:
    """The ingestion's clock (tests replace it to run at a chosen hour)."""
    return dt.datetime.now(dt.UTC)


def snapshot_day(observed_at: dt.datetime, cutoff: dt.timedelta) -> dt.date:
    """The UTC day a lifetime total observed at `observed_at` is stamped on: that day, or the
    day before while `observed_at` is less than `cutoff` past midnight UTC (so the 01:30 daily
    run records the end of yesterday). Never an older day."""
    return (observed_at.astimezone(dt.UTC) - cutoff).date()


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def ingest_integration(
    engine: sa.Engine,
    client_factory: Callable[[Account], PlatformClient],
    request: IntegrationRequest,
    options: IngestOptions,
) -> Iterator[PartitionOutcome]:
    """Every requested partition of one integration, each written in its own transaction.

    The integration's `Account` (its credential resolved by `credentials.resolve_credential`)
    is built once, before its first partition, and `client_factory(account)` creates the one
    client that serves every partition. A generator: each outcome is yielded as soon as its
    partition is committed, so the caller can report it while the next partition is being
    fetched."""
    with engine.connect() as conn:
        integration = wh.get_integration(conn, request.integration_id)
    preflight = _preflight(integration, request)
    if preflight is not None:
        yield from preflight
        return
    assert integration is not None
    yield from _IntegrationWorker(engine, client_factory, integration, options).run(request)


def unexpected_failure(
    request: IntegrationRequest,
    exc: Exception,
    already_reported: Collection[tuple[AssetName, dt.date]] = (),
) -> list[PartitionOutcome]:
    """The integration's partitions not yet reported, failed by an error no platform classified
    (a bug, the warehouse going away): retryable, since most such errors are passing."""
    message = redact(f"Unexpected {type(exc).__name__}: {exc}")
    return [
        PartitionOutcome(
            asset,
            ContentPartition(day, request.integration_id),
            Status.FAILED,
            {},
            ErrorClass.TRANSIENT,
            message,
        )
        for asset, day in _all_partitions(request)
        if (asset, day) not in already_reported
    ]


def _assets(request: IntegrationRequest) -> list[AssetName]:
    """The requested assets in the order they are written: metadata, metrics (which read it),
    account."""
    wanted = (
        (AssetName.CONTENT_METADATA, request.metadata),
        (AssetName.CONTENT_DAILY_METRICS, request.metrics),
        (AssetName.ACCOUNT_DAILY_METRICS, request.account),
    )
    return [asset for asset, selected in wanted if selected]


def _published_day(item: ContentItem) -> dt.date:
    return item.published_at.astimezone(dt.UTC).date()


def _all_partitions(request: IntegrationRequest) -> Iterator[tuple[AssetName, dt.date]]:
    """Every requested partition, in the order they are written."""
    for asset in _assets(request):
        for day in sorted(request.days):
            yield asset, day


def _preflight(
    integration: wh.TrackedIntegration | None, request: IntegrationRequest
) -> list[PartitionOutcome] | None:
    """Outcomes decided without calling the platform (unknown, paused, needs_reauth)."""
    if integration is None:
        reason = (
            f"Integration {request.integration_id!r} is not in tracked_integrations (removed?). "
            "Add it with `analytics-pipeline integrations add` or drop the partition."
        )
        status, error_class = Status.FAILED, ErrorClass.PERMANENT_CONFIG
    elif integration.status == IntegrationStatus.PAUSED:
        reason = f"Integration {integration.integration_id!r} is paused; nothing was fetched."
        status, error_class = Status.SKIPPED, None
    elif integration.status == IntegrationStatus.NEEDS_REAUTH:
        reason = (
            f"Integration {integration.integration_id!r} needs re-authorization "
            f"({integration.status_reason}). Store a valid token (`analytics-pipeline "
            f"integrations set-credential {integration.integration_id}`, the secrets directory "
            f"or ${integration.credential_env}), then run `analytics-pipeline integrations "
            f"resume {integration.integration_id}`."
        )
        status, error_class = Status.FAILED, ErrorClass.PERMANENT_CREDENTIAL
    else:
        return None
    return [
        PartitionOutcome(
            asset, ContentPartition(day, request.integration_id), status, {}, error_class, reason
        )
        for asset, day in _all_partitions(request)
    ]


class _IntegrationWorker:
    def __init__(
        self,
        engine: sa.Engine,
        client_factory: Callable[[Account], PlatformClient],
        integration: wh.TrackedIntegration,
        options: IngestOptions,
    ) -> None:
        self.engine = engine
        self.client_factory = client_factory
        self.integration = integration
        self.options = options
        self._handlers: dict[
            AssetName, Callable[[PlatformClient, list[dt.date]], Iterator[PartitionOutcome]]
        ] = {
            AssetName.CONTENT_METADATA: self._metadata_days,
            AssetName.CONTENT_DAILY_METRICS: self._metrics_days,
            AssetName.ACCOUNT_DAILY_METRICS: self._account_days,
        }

    # -- driving ---------------------------------------------------------------------------

    def run(self, request: IntegrationRequest) -> Iterator[PartitionOutcome]:
        stop: PlatformError | None = None
        client: PlatformClient | None = None
        days = sorted(request.days)
        for asset in _assets(request):
            pending = list(days)
            if stop is None:
                try:
                    if client is None:
                        client = self.client_factory(self._account())
                    for outcome in self._handlers[asset](client, days):
                        pending.remove(outcome.day)
                        yield outcome
                except _StopIntegration as exc:
                    stop = exc.error
                    yield self._failed(asset, pending.pop(0), stop)
            if stop is not None:
                yield from (self._not_attempted(asset, day, stop) for day in pending)

    def _account(self) -> Account:
        """The integration's account with its credential, resolved now (store, secrets
        directory, environment: see `credentials.resolve`)."""
        integration = self.integration
        try:
            resolved = credentials.resolve_credential(
                self.engine,
                integration.integration_id,
                integration.platform,
                integration.credential_env,
                credentials.load_credential_settings(),
            )
        except (credentials.CredentialError, SettingsError) as exc:
            error_class = getattr(exc, "error_class", ErrorClass.PERMANENT_CONFIG)
            raise _StopIntegration(
                PlatformError(error_class, redact(str(exc)), platform=integration.platform)
            ) from None
        return Account(
            organization_id=integration.organization_id,
            integration_id=integration.integration_id,
            platform=integration.platform,
            external_account_id=integration.external_account_id,
            token=resolved.token,
            token_source=resolved.token_source,
        )

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run a platform call; errors that concern the whole integration stop it."""
        try:
            return fn()
        except PlatformError as error:
            if error.error_class in _STOPS_INTEGRATION:
                raise _StopIntegration(error) from None
            raise

    # -- the three assets ------------------------------------------------------------------

    def _metadata_days(
        self, client: PlatformClient, days: list[dt.date]
    ) -> Iterator[PartitionOutcome]:
        """One range listing of every window of the run, then each day's window in its own
        transaction (the listing's requests are counted on the first day written)."""
        calls_before = client.api_calls
        try:
            start = self.options.window_start(days[0])
            items = self._call(lambda: list(client.list_content_between(start, days[-1])))
        except PlatformError as error:  # invalid response / object errors: these days only
            yield from (self._failed(AssetName.CONTENT_METADATA, day, error) for day in days)
            return
        calls = client.api_calls - calls_before
        for day in days:
            first = self.options.window_start(day)
            window = [i for i in items if first <= _published_day(i) <= day]
            yield self._metadata_day(client.account, day, window, calls)
            calls = 0

    def _metadata_day(
        self, account: Account, day: dt.date, items: list[ContentItem], api_calls: int
    ) -> PartitionOutcome:
        now = self.options.now()
        with self.engine.begin() as conn:
            counts = wh.upsert_content_items(
                conn,
                organization_id=account.organization_id,
                integration_id=account.integration_id,
                platform=account.platform,
                items=items,
                now=now,
            )
            details = {
                "items_in_window": len(items),
                "window_start": self.options.window_start(day).isoformat(),
                **_count_details(counts),
                "api_calls": api_calls,
                "formats": _format_counts(items),
            }
            self._mark_loaded(conn, AssetName.CONTENT_METADATA, day, now, len(items), details)
        return PartitionOutcome(
            AssetName.CONTENT_METADATA,
            ContentPartition(day, account.integration_id),
            Status.MATERIALIZED,
            details,
            rows=len(items),
        )

    def _metrics_days(
        self, client: PlatformClient, days: list[dt.date]
    ) -> Iterator[PartitionOutcome]:
        for day in days:
            yield self._metrics_day(client, day)

    def _metrics_day(self, client: PlatformClient, day: dt.date) -> PartitionOutcome:
        account = client.account
        now = self.options.now()
        stamp = snapshot_day(now, self.options.snapshot_cutoff)
        if client.content_metrics_are_lifetime and day != stamp:
            return self._not_recordable(day, now, stamp)
        with self.engine.connect() as conn:
            permalinks = wh.permalinks_published_between(
                conn,
                organization_id=account.organization_id,
                integration_id=account.integration_id,
                start=day_bounds(self.options.window_start(day))[0],
                end=day_bounds(day)[1],
            )
        content_ids = list(permalinks)
        calls_before = client.api_calls
        try:
            batch = self._call(
                lambda: client.fetch_content_metrics(content_ids, day, permalinks=permalinks)
            )
        except PlatformError as error:
            return self._failed(AssetName.CONTENT_DAILY_METRICS, day, error)
        with self.engine.begin() as conn:
            counts = wh.upsert_content_metrics(
                conn,
                organization_id=account.organization_id,
                integration_id=account.integration_id,
                metric_date=day,
                metrics=batch.metrics,
                observed_at=now,
            )
            details = {
                "recordable": True,
                "value_kind": batch.metrics[0].value_kind.value if batch.metrics else None,
                "items_in_window": len(content_ids),
                "rows_written": len(batch.metrics),
                **_count_details(counts),
                "api_calls": client.api_calls - calls_before,
                "metric_values_null": sum(m.null_count() for m in batch.metrics),
                "items_skipped": len(batch.skipped),
                "rejected_metrics": sorted(batch.rejected_metrics),
            }
            self._mark_loaded(
                conn, AssetName.CONTENT_DAILY_METRICS, day, now, len(batch.metrics), details
            )
            if batch.skipped:
                self._record_skipped(conn, day, batch.skipped, now)
        return PartitionOutcome(
            AssetName.CONTENT_DAILY_METRICS,
            ContentPartition(day, account.integration_id),
            Status.MATERIALIZED,
            details,
            rows=len(batch.metrics),
        )

    def _account_days(
        self, client: PlatformClient, days: list[dt.date]
    ) -> Iterator[PartitionOutcome]:
        """One range request for the run's days, then each day in its own transaction."""
        stamp = snapshot_day(self.options.now(), self.options.snapshot_cutoff)
        snapshot = stamp if days[0] <= stamp <= days[-1] else None
        calls_before = client.api_calls
        try:
            by_day = self._call(
                lambda: client.fetch_account_metrics_between(
                    days[0], days[-1], snapshot_day=snapshot
                )
            )
        except PlatformError as error:
            yield from (self._failed(AssetName.ACCOUNT_DAILY_METRICS, d, error) for d in days)
            return
        calls = client.api_calls - calls_before
        for day in days:
            metrics = by_day.get(day, AccountMetrics())
            yield self._account_day(client.account, day, metrics, day == snapshot, calls)
            calls = 0

    def _account_day(
        self,
        account: Account,
        day: dt.date,
        metrics: AccountMetrics,
        snapshot_wanted: bool,
        api_calls: int,
    ) -> PartitionOutcome:
        now = self.options.now()
        with self.engine.begin() as conn:
            counts = wh.upsert_account_metrics(
                conn,
                organization_id=account.organization_id,
                integration_id=account.integration_id,
                metric_date=day,
                metrics=metrics,
                observed_at=now,
            )
            details = {
                "followers_snapshot_recorded": snapshot_wanted
                and metrics.followers_total is not None,
                **_count_details(counts),
                "api_calls": api_calls,
                "metric_values_null": metrics.null_count(),
                "rejected_metrics": sorted(metrics.rejected_metrics),
            }
            self._mark_loaded(conn, AssetName.ACCOUNT_DAILY_METRICS, day, now, 1, details)
        return PartitionOutcome(
            AssetName.ACCOUNT_DAILY_METRICS,
            ContentPartition(day, account.integration_id),
            Status.MATERIALIZED,
            details,
            rows=1,
        )

    def _not_recordable(self, day: dt.date, now: dt.datetime, stamp: dt.date) -> PartitionOutcome:
        reason = (
            f"{self.integration.platform} content metrics are lifetime totals: observed now "
            f"({now:%Y-%m-%d %H:%M} UTC) they are {stamp.isoformat()}'s snapshot, not "
            f"{day.isoformat()}'s. A day's snapshot is taken on that day (or before "
            "ANALYTICS_SNAPSHOT_CUTOFF_HOURS the next morning) and never rewritten later."
        )
        details = {"recordable": False, "reason": reason, "rows_written": 0, "api_calls": 0}
        with self.engine.begin() as conn:
            self._mark_loaded(conn, AssetName.CONTENT_DAILY_METRICS, day, now, 0, details)
        return PartitionOutcome(
            AssetName.CONTENT_DAILY_METRICS,
            ContentPartition(day, self.integration.integration_id),
            Status.MATERIALIZED,
            details,
            rows=0,
        )

    # -- bookkeeping -------------------------------------------------------------------------

    def _mark_loaded(
        self,
        conn: sa.Connection,
        asset: AssetName,
        day: dt.date,
        now: dt.datetime,
        rows: int,
        details: dict[str, Any],
    ) -> None:
        partition_key = ContentPartition(day, self.integration.integration_id).key
        wh.record_partition_load(
            conn,
            integration_id=self.integration.integration_id,
            asset=asset,
            partition_date=day,
            loaded_at=now,
            run_id=self.options.run_id,
            rows_written=rows,
            details=details,
        )
        wh.resolve_failures(
            conn,
            integration_id=self.integration.integration_id,
            asset=asset,
            partition_key=partition_key,
            resolved_at=now,
        )

    def _record_skipped(
        self, conn: sa.Connection, day: dt.date, skipped: Sequence[Any], now: dt.datetime
    ) -> None:
        for item in skipped:
            wh.record_failure(
                conn,
                organization_id=self.integration.organization_id,
                integration_id=self.integration.integration_id,
                asset=AssetName.CONTENT_DAILY_METRICS,
                partition_key=ContentPartition(day, self.integration.integration_id).key,
                error_class=ErrorClass.PERMANENT_OBJECT.value,
                platform_code=item.code,
                message=redact(f"{item.external_content_id}: {item.message}"),
                run_id=self.options.run_id,
                occurred_at=now,
            )

    def _failed(self, asset: AssetName, day: dt.date, error: PlatformError) -> PartitionOutcome:
        now = self.options.now()
        message = redact(str(error))
        with self.engine.begin() as conn:
            wh.record_failure(
                conn,
                organization_id=self.integration.organization_id,
                integration_id=self.integration.integration_id,
                asset=asset,
                partition_key=ContentPartition(day, self.integration.integration_id).key,
                error_class=error.error_class.value,
                platform_code=error.code,
                message=message,
                run_id=self.options.run_id,
                occurred_at=now,
            )
            if error.error_class is ErrorClass.PERMANENT_CREDENTIAL:
                wh.set_integration_status(
                    conn,
                    self.integration.integration_id,
                    IntegrationStatus.NEEDS_REAUTH,
                    message,
                    now,
                )
        return PartitionOutcome(
            asset,
            ContentPartition(day, self.integration.integration_id),
            Status.FAILED,
            {"error_class": error.error_class.value, "platform_code": error.code},
            error.error_class,
            message,
            error.retry_after,
        )

    def _not_attempted(
        self, asset: AssetName, day: dt.date, cause: PlatformError
    ) -> PartitionOutcome:
        message = redact(f"Not attempted after an earlier error on this integration: {cause}")
        return PartitionOutcome(
            asset,
            ContentPartition(day, self.integration.integration_id),
            Status.FAILED,
            {"error_class": cause.error_class.value, "not_attempted": True},
            cause.error_class,
            message,
            cause.retry_after,
        )


def _count_details(counts: wh.UpsertCounts) -> dict[str, int]:
    return {
        "rows_inserted": counts.inserted,
        "rows_updated": counts.updated,
        "rows_unchanged": counts.unchanged,
    }


def _format_counts(items: Sequence[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.format.value] = counts.get(item.format.value, 0) + 1
    return dict(sorted(counts.items()))
