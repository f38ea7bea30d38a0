"""The ingestion step's run over its integrations: worker threads, stop, and what already landed.

`IntegrationRun` fans the step's integrations out on threads (`ingest.ingest_integration`) and
hands each partition's outcome back to the step's thread as soon as it is committed. Two rules
of issue 10 live here:
- stop means stop: Dagster's interrupt (Terminate from the UI or `analytics-pipeline backfill`,
  forwarded by the run worker; SIGTERM/SIGINT of an in-process run) or an in-process host's
  `stop.request_stop()` ends the work
  within seconds (pauses wake, no further request, the partitions being written commit) and is
  never turned into a retry: the rest come back as `stopped` failures;
- a retry redoes only what failed: partitions materialized by an earlier attempt of this run,
  or by the runs a re-execution re-executes, are neither fetched nor written again.

Before its workers start, the step takes a slot on each platform it fetches from
(`platform_slots.py`: at most `ANALYTICS_MAX_RUNS_PER_PLATFORM` runs per platform, however they
were launched); a stop while it waits for one ends the step as stopped.

A worker's `Notice` (a Meta token that expires or loses data access soon, from the token check
of a run's first step attempt) is logged once as a Dagster warning; `social_ingestion` also puts
it on the integration's first materialization of the run (`token_warning`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.partitions import group_by_integration
from analytics_pipeline.defs.platform_slots import PlatformSlots
from analytics_pipeline.defs.resources import PlatformsResource
from analytics_pipeline.ingest import (
    IngestOptions,
    IntegrationRequest,
    Notice,
    PartitionOutcome,
    ingest_integration,
    stopped_outcome,
    unexpected_failure,
)
from analytics_pipeline.platforms.base import Account, PlatformClient
from analytics_pipeline.platforms.http import RunStopped
from analytics_pipeline.platforms.redact import redact
from analytics_pipeline.records import AssetName, ContentPartition
from analytics_pipeline.stop import stop_requested


def _key(asset: AssetName) -> dg.AssetKey:
    return dg.AssetKey(asset.value)


# How Dagster delivers a stop to the step's thread (SIGTERM/SIGINT of an in-process run, the
# run worker forwarding the UI's Terminate). Both are public names.
class _StopAsked(Exception):
    """An in-process host asked for a stop (`analytics_pipeline.stop`)."""


STOPS = (KeyboardInterrupt, dg.DagsterExecutionInterruptedError, _StopAsked)


class IntegrationRun:
    """Each integration of the step on a worker thread (bounded). Every partition's outcome is
    passed back through a queue the moment it is committed, so the step's thread records it in
    Dagster while the workers are waiting on the platforms.

    A stop (Dagster's interrupt in the step's thread, or `stop.request_stop()`) is never turned
    into a retry: integrations not started are dropped, every pause wakes up, no further request
    is sent, the partitions being written are committed and reported, and the rest come back as
    `stopped` failures (`self.stopped` is then True)."""

    def __init__(
        self,
        context: dg.AssetExecutionContext,
        engine: sa.Engine,
        platforms: PlatformsResource,
        options: IngestOptions,
    ) -> None:
        self.context = context
        self.engine = engine
        self.platforms = platforms
        # The token check runs in a run's first step attempt only: one warning per run.
        self.options = dataclasses.replace(
            options, check_token=context.retry_number == 0, notify=self._notify
        )
        self.stopped = False
        # Token warnings of this run (integration id -> line), logged once as they arrive.
        self.token_warnings: dict[str, str] = {}
        self._results: queue.Queue[_Item] = queue.Queue()
        self._stop = threading.Event()
        self._canceling = threading.Event()  # the run's status says it is being terminated
        self._done = threading.Event()
        self._waited_before = waited_before(context)
        self._pacer = platforms.pacer(self._stop, self._waited_before)
        # Workers commit at most this many partitions ahead of what the step's thread recorded.
        self._backlog = threading.Semaphore(_BACKLOG_PER_WORKER * platforms.max_concurrency)

    def outcomes(self, partition_keys: Sequence[str]) -> Iterator[PartitionOutcome]:
        requests = self._requests(partition_keys)
        self._watch_run_status()
        slots = PlatformSlots(
            self.engine,
            self.context.run.run_id,
            self.platforms.max_runs_per_platform,
            self.context.log.info,
        )
        try:
            if self._take_slots(slots, requests):
                yield from self._fan_out(requests)
            else:
                yield from self._not_reached(requests, set())
        finally:
            self._done.set()
            slots.release()

    def _take_slots(self, slots: PlatformSlots, requests: list[IntegrationRequest]) -> bool:
        """A slot on each platform the requests fetch from (see platform_slots.py); False
        when a stop came first (then `self.stopped`: every partition fails as `stopped`)."""
        integration_ids = [request.integration_id for request in requests]
        try:
            if slots.take(integration_ids, lambda: self._stop.is_set() or stop_requested()):
                return True
        except STOPS:
            pass
        self._begin_stop([])
        return False

    def _fan_out(self, requests: list[IntegrationRequest]) -> Iterator[PartitionOutcome]:
        results: queue.Queue[_Item] = queue.Queue()  # bounded by self._backlog
        self._results = results
        pool = ThreadPoolExecutor(max_workers=self.platforms.max_concurrency)
        futures = [pool.submit(self._work, request, results) for request in requests]
        try:
            yield from self._collect(requests, futures, results)
        finally:
            self._done.set()
            # Left early (Dagster closed the step): stop the workers, unblocking any that waits
            # to hand over an outcome, so the step ends promptly.
            self._stop.set()
            for future in futures:
                future.cancel()
            while not all(future.done() for future in futures):
                with contextlib.suppress(queue.Empty):
                    results.get(timeout=_POLL_S)
            pool.shutdown(wait=True)
            self._record_waits()

    def _record_waits(self) -> None:
        """Leave the run's rate-limit waits so far on the run (a tag, shown in the UI): a step
        retry starts from them, so the budget caps the run, not each attempt."""
        waited = self._pacer.waited_s
        if waited > self._waited_before:
            self.context.instance.add_run_tags(
                self.context.run.run_id, {WAITED_TAG: f"{waited:.1f}"}
            )

    def _requests(self, partition_keys: Sequence[str]) -> list[IntegrationRequest]:
        """One request per integration with partitions still to do (those that landed in an
        earlier attempt of this run, or in the run this one resumes, are left out)."""
        selected = self.context.selected_asset_keys
        landed = landed_partitions(self.context, self.engine)
        requests, skipped = [], 0
        for integration_id, days in group_by_integration(partition_keys).items():
            request = IntegrationRequest(
                integration_id=integration_id,
                days=days,
                metadata=_key(AssetName.CONTENT_METADATA) in selected,
                metrics=_key(AssetName.CONTENT_DAILY_METRICS) in selected,
                account=_key(AssetName.ACCOUNT_DAILY_METRICS) in selected,
            )
            done = frozenset(
                (asset, day)
                for asset, day in request.pending()
                if (_key(asset), ContentPartition(day, integration_id).key) in landed
            )
            skipped += len(done)
            request = dataclasses.replace(request, landed=done)
            if request.pending():
                requests.append(request)
        self.context.log.info(
            f"Ingesting {len(requests)} integration(s), {sum(len(r.days) for r in requests)} "
            f"integration-day(s), with up to {self.platforms.max_concurrency} at a time"
            + (
                f"; {skipped} partition(s) already landed in this run are skipped."
                if skipped
                else "."
            )
        )
        return requests

    def _notify(self, notice: Notice) -> None:
        """A worker's notice, handed to the step's thread (which logs it) like an outcome."""
        self._results.put(notice)

    def _work(self, request: IntegrationRequest, results: queue.Queue[_Item]) -> None:
        reported: set[tuple[AssetName, dt.date]] = set()
        error: Exception | None = None
        if self._stop.is_set():  # stopped before it started (the step may be gone: no cancel)
            results.put(_WorkerDone(request, reported, None))
            return

        def client_factory(account: Account) -> PlatformClient:
            return self.platforms.create_client(account, self._pacer)

        try:
            for outcome in ingest_integration(self.engine, client_factory, request, self.options):
                reported.add((outcome.asset, outcome.day))
                self._hand_over(outcome, results)
                if self._stop.is_set():
                    break
        except RunStopped:
            pass  # its partitions not reported come back as `stopped`
        except Exception as exc:  # a bug or a warehouse outage must not hide the others
            error = exc
        results.put(_WorkerDone(request, reported, error))

    def _hand_over(self, outcome: PartitionOutcome, results: queue.Queue[_Item]) -> None:
        """Bounded while the step runs (the workers stay a few partitions ahead of what the
        step's thread recorded); once stopping, never blocks: a step that Dagster's interrupt
        took away reads no more, and a blocked worker would keep its process alive."""
        while not self._stop.is_set():
            if self._backlog.acquire(timeout=_POLL_S):
                break
        results.put(outcome)

    def _watch_run_status(self) -> None:
        """Stop the workers as soon as the run's status says it is being terminated.

        A Terminate (the UI's, the CLI's) reports CANCELING, then interrupts the run worker's
        main thread; when that interrupt lands while Dagster records one of the step's events,
        Dagster abandons the step (its `finally` never runs). The workers then stop here, within
        `_STATUS_POLL_S` of CANCELING, instead of committing partitions nobody records;
        `settle.settle_run` accounts for the few committed in between. The step's thread does
        not act on the status itself: the interrupt follows CANCELING within milliseconds and
        would then land in the step's code outside `_next`, which Dagster turns into a retry.
        Not for an ephemeral instance (an in-process host stops through `stop.request_stop()`)."""
        instance = self.context.instance
        if instance.is_ephemeral:
            return
        run_id = self.context.run.run_id

        def watch() -> None:
            while not self._done.wait(_STATUS_POLL_S):
                status = _run_status(instance, run_id)
                if status is None or status in _ENDING:
                    self._canceling.set()
                    self._stop.set()
                    return

        threading.Thread(target=watch, name="run-status-watch", daemon=True).start()

    def _collect(
        self,
        requests: list[IntegrationRequest],
        futures: list[Future[None]],
        results: queue.Queue[_Item],
    ) -> Iterator[PartitionOutcome]:
        reported: set[tuple[AssetName, ContentPartition]] = set()
        running = len(requests)
        while running:
            try:
                item = self._next(results)
            except STOPS:
                running -= self._begin_stop(futures)
                continue
            if isinstance(item, PartitionOutcome):
                self._backlog.release()
                reported.add((item.asset, item.partition))
                yield item
                continue
            if isinstance(item, Notice):
                self._log_notice(item)
                continue
            running -= 1
            if item.error is not None:
                self.context.log.error(
                    f"Integration {item.request.integration_id}: unexpected "
                    f"{type(item.error).__name__}: {redact(str(item.error))}"
                )
                for outcome in unexpected_failure(item.request, item.error, item.reported):
                    reported.add((outcome.asset, outcome.partition))
                    yield outcome
        # The workers stopped on a CANCELING run whose interrupt never reached this thread
        # (it is not waited for here: a step that stopped itself on the status would meet that
        # interrupt outside `_next`, and Dagster's RetryPolicy would retry the step).
        self.stopped = self.stopped or self._canceling.is_set()
        if self.stopped:
            yield from self._not_reached(requests, reported)

    def _log_notice(self, notice: Notice) -> None:
        if notice.warning:
            self.token_warnings[notice.integration_id] = notice.message
            self.context.log.warning(notice.message)
        else:
            self.context.log.info(notice.message)

    def _next(self, results: queue.Queue[_Item]) -> _Item:
        while True:
            if not self.stopped and stop_requested():
                raise _StopAsked()
            try:
                return results.get(timeout=_POLL_S)
            except queue.Empty:
                continue

    def _begin_stop(self, futures: list[Future[None]]) -> int:
        """Stop the workers; returns how many never started (they will not report)."""
        if self.stopped:  # a second signal: already stopping, nothing more to cancel
            return 0
        self.context.log.warning(
            "Stop requested: no further requests; the partitions being written are "
            "committed, the others fail as `stopped` (not retried)."
        )
        self.stopped = True
        self._stop.set()
        return sum(1 for future in futures if future.cancel())

    @staticmethod
    def _not_reached(
        requests: list[IntegrationRequest], reported: set[tuple[AssetName, ContentPartition]]
    ) -> Iterator[PartitionOutcome]:
        for request in requests:
            for asset, day in request.pending():
                partition = ContentPartition(day, request.integration_id)
                if (asset, partition) not in reported:
                    yield stopped_outcome(asset, partition)


_POLL_S = 0.2  # how often the step's thread looks at the process's stop request
_STATUS_POLL_S = 0.5  # how often the run's status is read (one small query)
_ENDING = frozenset(
    {dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE}
)
_BACKLOG_PER_WORKER = 2  # committed partitions a worker may have waiting to be recorded


def _run_status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus | None:
    """The run's status; STARTED when the run storage could not be read (look again later)."""
    try:
        run = instance.get_run_by_id(run_id)
    except Exception:
        return dg.DagsterRunStatus.STARTED
    return run.status if run is not None else None


WAITED_TAG = "analytics/rate_limit_waited_s"


def waited_before(context: dg.AssetExecutionContext) -> float:
    """Seconds of rate-limit pauses earlier attempts of this step spent (their run tag)."""
    if context.retry_number == 0:
        return 0.0
    run = context.instance.get_run_by_id(context.run.run_id)
    value = run.tags.get(WAITED_TAG) if run is not None else None
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0


def landed_partitions(
    context: dg.AssetExecutionContext, engine: sa.Engine | None = None
) -> set[tuple[dg.AssetKey, str]]:
    """(asset, partition key) materialized by this run (earlier attempts of the step) and, for
    a re-execution, by the runs it re-executes (its parent, their parents): the UI's and the
    daemon's "from failure" re-executions and also "all steps" ones, since the step is the
    whole run here (refetching what landed is a new backfill, not a re-execution). With the
    warehouse's `engine`, also what the parent runs committed without recording it (a stopped
    or crashed run: `settle.py` materializes those once it ended). Not for this run's earlier
    attempts: what they committed without recording is fetched again and recorded here."""
    if context.retry_number == 0 and context.run.parent_run_id is None:
        return set()  # a first attempt of a fresh run: nothing can have landed yet
    instance = context.instance
    run_ids = [context.run.run_id]
    parent_id = context.run.parent_run_id
    while parent_id is not None and parent_id not in run_ids:
        run_ids.append(parent_id)
        parent = instance.get_run_by_id(parent_id)
        parent_id = parent.parent_run_id if parent is not None else None
    landed: set[tuple[dg.AssetKey, str]] = set()
    for run_id in run_ids:
        cursor = None
        while True:
            page = instance.get_records_for_run(
                run_id,
                cursor=cursor,
                of_type=dg.DagsterEventType.ASSET_MATERIALIZATION,
                limit=_RECORDS_PAGE,
            )
            for record in page.records:
                materialization = record.event_log_entry.asset_materialization
                if materialization is not None and materialization.partition is not None:
                    landed.add((materialization.asset_key, materialization.partition))
            if not page.has_more:
                break
            cursor = page.cursor
    if engine is not None:  # parents only: an ended run is settled (its loads materialized)
        with engine.connect() as conn:
            for run_id in run_ids[1:]:
                for label in wh.run_ledger(conn, run_id).loads:
                    asset, key = label.split(":", 1)
                    landed.add((dg.AssetKey(asset), key))
    return landed


_RECORDS_PAGE = 5_000


@dataclass(frozen=True)
class _WorkerDone:
    """A worker finished one integration; `error` if it stopped on an unexpected exception."""

    request: IntegrationRequest
    reported: set[tuple[AssetName, dt.date]]
    error: Exception | None


# What a worker hands to the step's thread.
_Item = PartitionOutcome | _WorkerDone | Notice

_INTERRUPT_NAMES = frozenset({"KeyboardInterrupt", "DagsterExecutionInterruptedError"})


def interrupted_before(context: dg.AssetExecutionContext) -> bool:
    """True when an earlier attempt of this step was turned into a retry by an interrupt.

    The step catches Dagster's interrupt itself (see `IntegrationRun`), except in the instant
    Dagster is recording one of its events: Dagster then raises it outside the step's code and
    its RetryPolicy asks for a retry. That retry must end at once instead of starting over."""
    records = context.instance.get_records_for_run(
        context.run.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        error = event.step_retry_data.error if event is not None else None
        while error is not None:
            if error.cls_name in _INTERRUPT_NAMES:
                return True
            error = error.cause
    return False
