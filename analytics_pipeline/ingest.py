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
- a permanent error on one content item: the item is skipped, the rest of the day lands;
- a metric the platform rejected or deprecated: the partition lands without it and one
  `rejected_metric` failure row per integration x metric x run says so;
- the run's rate-limit wait budget spent (`http.WaitBudgetSpent`): the partition fails as
  transient but `deferred`, so it is not retried in this run (like a daily quota).

Every failed partition gets an `ingestion_failures` row: written with the failure when the
warehouse allows, else (and for partitions not attempted) by `record_failures` at the end of
the step; `PartitionOutcome.recorded` says which is which.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from analytics_pipeline import credentials
from analytics_pipeline import warehouse as wh
from analytics_pipeline.credentials.meta import meta_expiry_warning
from analytics_pipeline.platforms.base import Account, PlatformClient, PlatformError
from analytics_pipeline.platforms.http import WaitBudgetSpent
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
    recorded: bool = False  # its ingestion_failures row is written (failures only)
    deferred: bool = False  # left for a later run (wait budget spent): not retried in this one

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
            and not self.deferred
            and (self.retry_after or 0) <= MAX_IN_RUN_RETRY_AFTER_S
        )


@dataclass(frozen=True)
class Notice:
    """What the operator should read about one integration in this run, not a failure (a Meta
    token that expires soon): the caller logs it once."""

    integration_id: str
    message: str
    warning: bool = True  # False: informational (the token's expiry could not be checked)


def _ignore(notice: Notice) -> None:
    """The default `IngestOptions.notify`: no one to tell."""


@dataclass(frozen=True)
class IngestOptions:
    lookback_days: int
    snapshot_cutoff: dt.timedelta
    partitions_start: dt.date
    run_id: str | None = None
    now: Callable[[], dt.datetime] = field(default=lambda: utc_now())
    # Ask the platform how long each token stays usable (Meta's debug_token: one request per
    # integration) and pass a warning to `notify`. Off in a retried step attempt: once a run.
    check_token: bool = True
    notify: Callable[[Notice], None] = _ignore

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
    # Partitions that already landed in this run (an earlier step attempt) or in the run it
    # resumes: neither fetched nor written again.
    landed: frozenset[tuple[AssetName, dt.date]] = frozenset()

    def pending(self) -> list[tuple[AssetName, dt.date]]:
        """The partitions still to do, in the order they are written."""
        return [key for key in _all_partitions(self) if key not in self.landed]


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
        for asset, day in request.pending()
        if (asset, day) not in already_reported
    ]


def stopped_outcome(asset: AssetName, partition: ContentPartition) -> PartitionOutcome:
    """A partition a stopped run did not get to (class `stopped`, not retried)."""
    return PartitionOutcome(
        asset,
        partition,
        Status.FAILED,
        {"error_class": ErrorClass.STOPPED.value, "not_attempted": True},
        ErrorClass.STOPPED,
        "Not attempted: the run was stopped (SIGTERM, Ctrl-C or Terminate) before this "
        "partition landed.",
    )


# How long the end of a step keeps trying to write failure rows while the warehouse is away.
FAILURE_ROW_PATIENCE_S = 30.0
UNKNOWN_ORGANIZATION = "unknown"  # a failure of an integration no longer tracked


def record_failures(
    engine: sa.Engine,
    outcomes: Sequence[PartitionOutcome],
    run_id: str | None,
    *,
    patience_s: float = FAILURE_ROW_PATIENCE_S,
    sleep: Callable[[float], None] = time.sleep,
) -> list[PartitionOutcome]:
    """Write the `ingestion_failures` row of every failed outcome that has none yet (partitions
    not attempted, failures met while the warehouse was away), in one transaction, retrying
    for up to `patience_s` while the warehouse cannot be reached. Returns the failed outcomes
    still without a row (the caller reports them by name)."""
    missing = [o for o in outcomes if o.status is Status.FAILED and not o.recorded]
    deadline = time.monotonic() + patience_s
    delay = 1.0
    while missing:
        try:
            _write_failures(engine, missing, run_id)
            return []
        except sa.exc.SQLAlchemyError:
            if time.monotonic() + delay > deadline:
                return missing
            sleep(delay)
            delay = min(delay * 2, 8.0)
    return []


def _write_failures(
    engine: sa.Engine, missing: Sequence[PartitionOutcome], run_id: str | None
) -> None:
    now = utc_now()
    with engine.begin() as conn:
        organizations = {i.integration_id: i.organization_id for i in wh.list_integrations(conn)}
        for outcome in missing:
            wh.record_failure(
                conn,
                organization_id=organizations.get(outcome.integration_id, UNKNOWN_ORGANIZATION),
                integration_id=outcome.integration_id,
                asset=outcome.asset,
                partition_key=outcome.partition.key,
                error_class=outcome.error_class or ErrorClass.TRANSIENT,
                platform_code=outcome.metadata.get("platform_code"),
                message=outcome.message or "failed",
                run_id=run_id,
                occurred_at=now,
            )


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
        for asset, day in request.pending()
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
        for asset in _assets(request):
            days = [day for day in sorted(request.days) if (asset, day) not in request.landed]
            if not days:
                continue
            pending = list(days)
            if stop is None:
                try:
                    if client is None:
                        client = self.client_factory(self._account())
                        self._check_token(client)
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

    def _check_token(self, client: PlatformClient) -> None:
        """Tell the operator (`options.notify`) when the token expires or loses data access
        within ANALYTICS_TOKEN_EXPIRY_WARN_DAYS. Never fails the run: a check that fails is an
        informational notice, and the ingestion meets any real credential error itself."""
        if not self.options.check_token:
            return
        integration_id = self.integration.integration_id
        try:
            status = client.token_status()
        except PlatformError as error:
            unchecked = f"The expiry of the token of integration {integration_id!r} could not "
            self.options.notify(Notice(integration_id, f"{unchecked}be checked: {error}", False))
            return
        if status is None:
            return
        try:
            warn_days = credentials.load_credential_settings().token_expiry_warn_days
        except SettingsError:
            warn_days = credentials.CredentialSettings().token_expiry_warn_days
        warning = meta_expiry_warning(integration_id, status, self.options.now(), warn_days)
        if warning is not None:
            self.options.notify(Notice(integration_id, warning))

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
            self._record_rejected(
                conn, AssetName.CONTENT_DAILY_METRICS, day, batch.rejected_metrics, now
            )
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
            self._record_rejected(
                conn, AssetName.ACCOUNT_DAILY_METRICS, day, metrics.rejected_metrics, now
            )
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

    def _record_rejected(
        self,
        conn: sa.Connection,
        asset: AssetName,
        day: dt.date,
        metrics: Collection[str],
        now: dt.datetime,
    ) -> None:
        """A `rejected_metric` row per metric the platform refused, once per run."""
        platform = self.integration.platform
        for metric in sorted(metrics):
            wh.record_rejected_metric(
                conn,
                organization_id=self.integration.organization_id,
                integration_id=self.integration.integration_id,
                asset=asset,
                partition_key=ContentPartition(day, self.integration.integration_id).key,
                metric=metric,
                message=(
                    f"{platform} rejected or no longer serves the metric {metric!r}: partitions "
                    f"landed without it. Drop it from ANALYTICS_{platform.upper()}_*_METRICS "
                    "or check the API version."
                ),
                run_id=self.options.run_id,
                occurred_at=now,
            )

    def _failed(self, asset: AssetName, day: dt.date, error: PlatformError) -> PartitionOutcome:
        """The failed partition, its failure row written now when the warehouse allows (else
        `record_failures` writes it at the end of the step)."""
        now = self.options.now()
        message = redact(str(error))
        try:
            self._write_failure(asset, day, error, message, now)
            recorded = True
        except sa.exc.SQLAlchemyError:
            recorded = False
        return PartitionOutcome(
            asset,
            ContentPartition(day, self.integration.integration_id),
            Status.FAILED,
            {"error_class": error.error_class.value, "platform_code": error.code},
            error.error_class,
            message,
            error.retry_after,
            recorded=recorded,
            deferred=isinstance(error, WaitBudgetSpent),
        )

    def _write_failure(
        self, asset: AssetName, day: dt.date, error: PlatformError, message: str, now: dt.datetime
    ) -> None:
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
            deferred=isinstance(cause, WaitBudgetSpent),
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
