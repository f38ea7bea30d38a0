"""The ingestion step's worker pool: outcomes stream back per partition, and a step that is
left early (a terminated run) stops its workers instead of finishing the whole backfill."""

from __future__ import annotations

import datetime as dt
import threading
import time
from types import SimpleNamespace

import dagster as dg
import pytest

from analytics_pipeline.defs import integration_run as ingestion
from analytics_pipeline.defs.assets import (
    ACCOUNT_DAILY_METRICS,
    CONTENT_DAILY_METRICS,
    CONTENT_METADATA,
)
from analytics_pipeline.ingest import IngestOptions, PartitionOutcome, Status
from analytics_pipeline.platforms.http import Pacer
from analytics_pipeline.records import AssetName, ContentPartition, ErrorClass
from analytics_pipeline_tests.helpers import wait_for

DAYS = [dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(5)]
CONCURRENCY = 4
INTEGRATIONS = [f"int-{n}" for n in range(3 * CONCURRENCY)]


KEYS = [ContentPartition(day, i).key for day in DAYS for i in INTEGRATIONS]
OPTIONS = IngestOptions(
    lookback_days=1, snapshot_cutoff=dt.timedelta(hours=2), partitions_start=DAYS[0]
)


class _NoSlots:
    """No warehouse here: every platform slot is free (warehouse slots: test_platform_slots)."""

    def __init__(self, *_args) -> None:
        pass

    def take(self, _integration_ids, _stopping) -> bool:
        return True

    def release(self) -> None:
        pass


@pytest.fixture(autouse=True)
def _no_slots(monkeypatch) -> None:
    monkeypatch.setattr(ingestion, "PlatformSlots", _NoSlots)


def _context() -> SimpleNamespace:
    silent = SimpleNamespace(info=lambda _m: None, error=lambda _m: None, warning=lambda _m: None)
    selected = {CONTENT_METADATA, CONTENT_DAILY_METRICS, ACCOUNT_DAILY_METRICS}
    ephemeral = SimpleNamespace(is_ephemeral=True)  # no run status to watch
    return SimpleNamespace(
        selected_asset_keys=selected,
        log=silent,
        retry_number=0,
        instance=ephemeral,
        run=SimpleNamespace(run_id="run-1"),
    )


def _slow_ingest(
    started: list[str], produced: list[str], hold: list[threading.Event] | None = None
):
    """Ingests each day after 10 ms; with `hold`, a worker waits for its event after three
    days (bounded): more than the backlog the step lets workers commit ahead."""
    lock = threading.Lock()

    def ingest(_engine, _factory, request, _options):
        with lock:
            started.append(request.integration_id)
        for n, day in enumerate(request.days):
            time.sleep(0.01)
            if hold and n == 3:
                hold[0].wait(30)
            with lock:
                produced.append(request.integration_id)
            yield PartitionOutcome(
                AssetName.CONTENT_METADATA,
                ContentPartition(day, request.integration_id),
                Status.MATERIALIZED,
            )

    return ingest


def _run(monkeypatch, started: list[str], produced: list[str]):
    monkeypatch.setattr(ingestion, "ingest_integration", _slow_ingest(started, produced))
    monkeypatch.setattr(ingestion, "landed_partitions", lambda *_: set())
    platforms = SimpleNamespace(
        create_client=None,
        max_concurrency=CONCURRENCY,
        max_runs_per_platform=2,
        pacer=lambda stop, waited_s=0.0: Pacer(stop),
    )
    run = ingestion.IntegrationRun(_context(), None, platforms, OPTIONS)  # type: ignore[arg-type]
    return run.outcomes(KEYS)


def test_every_partition_of_every_integration_comes_back(monkeypatch) -> None:
    started: list[str] = []
    outcomes = list(_run(monkeypatch, started, []))
    assert sorted(started) == sorted(INTEGRATIONS)
    assert len(outcomes) == len(INTEGRATIONS) * len(DAYS)


def test_leaving_early_stops_the_workers(monkeypatch) -> None:
    started: list[str] = []
    produced: list[str] = []
    outcomes = _run(monkeypatch, started, produced)
    first = next(outcomes)
    outcomes.close()  # what a terminated run does to the step's generator
    assert first.status is Status.MATERIALIZED
    # Only the integrations already running when it closed were started, and each of them
    # stopped after the partition it was writing.
    assert len(started) <= CONCURRENCY < len(INTEGRATIONS)
    assert len(produced) <= 2 * CONCURRENCY


def test_a_stop_request_ends_the_run_and_fails_the_rest_as_stopped(monkeypatch) -> None:
    from analytics_pipeline import stop

    started: list[str] = []
    produced: list[str] = []
    monkeypatch.setattr(ingestion, "ingest_integration", _slow_ingest(started, produced))
    monkeypatch.setattr(ingestion, "landed_partitions", lambda *_: set())
    platforms = SimpleNamespace(
        create_client=None,
        max_concurrency=CONCURRENCY,
        max_runs_per_platform=2,
        pacer=lambda stop, waited_s=0.0: Pacer(stop),
    )
    context = _context()
    context.selected_asset_keys = {CONTENT_METADATA}
    run = ingestion.IntegrationRun(context, None, platforms, OPTIONS)  # type: ignore[arg-type]
    outcomes = run.outcomes(KEYS)
    first = next(outcomes)
    stop.request_stop()
    try:
        rest = list(outcomes)
    finally:
        stop.clear_stop()
    every = [first, *rest]
    assert run.stopped
    assert len(started) <= CONCURRENCY < len(INTEGRATIONS)
    # Every partition comes back exactly once: landed, or failed as `stopped`.
    assert sorted(o.partition.key for o in every) == sorted(KEYS)
    landed = [o for o in every if o.status is Status.MATERIALIZED]
    stopped = [o for o in every if o.status is Status.FAILED]
    assert len(landed) == len(produced) and stopped
    assert {o.error_class for o in stopped} == {ErrorClass.STOPPED}


class _RunStatuses:
    """An instance whose one run is STARTED until `cancel()` (what a Terminate reports first)."""

    is_ephemeral = False

    def __init__(self) -> None:
        self.status = dg.DagsterRunStatus.STARTED

    def cancel(self) -> None:
        self.status = dg.DagsterRunStatus.CANCELING

    def get_run_by_id(self, _run_id: str) -> SimpleNamespace:
        return SimpleNamespace(status=self.status)


def _watched_run(monkeypatch, started, produced, finished):
    """A run whose workers, after three days, wait until the run is being stopped."""
    hold: list[threading.Event] = []
    monkeypatch.setattr(ingestion, "ingest_integration", _slow_ingest(started, produced, hold))
    monkeypatch.setattr(ingestion, "landed_partitions", lambda *_: set())
    work = ingestion.IntegrationRun._work

    def recorded_work(self, request, results):
        work(self, request, results)
        finished.append(request.integration_id)

    monkeypatch.setattr(ingestion.IntegrationRun, "_work", recorded_work)
    platforms = SimpleNamespace(
        create_client=None,
        max_concurrency=CONCURRENCY,
        max_runs_per_platform=2,
        pacer=lambda stop, waited_s=0.0: Pacer(stop),
    )
    context = _context()
    context.selected_asset_keys = {CONTENT_METADATA}
    context.instance = _RunStatuses()
    context.run = SimpleNamespace(run_id="run-1")
    run = ingestion.IntegrationRun(context, None, platforms, OPTIONS)  # type: ignore[arg-type]
    hold.append(run._stop)
    return run, context.instance


def test_a_canceling_run_stops_its_workers_even_if_the_step_never_reads_again(
    monkeypatch,
) -> None:
    """Dagster's interrupt can take the step's thread away between two events (the generator
    is abandoned, not closed): the workers stop on the run's CANCELING status, and none of
    them stays blocked handing over an outcome nobody reads."""
    started: list[str] = []
    produced: list[str] = []
    finished: list[str] = []
    run, instance = _watched_run(monkeypatch, started, produced, finished)
    outcomes = run.outcomes(KEYS)
    next(outcomes)
    instance.cancel()
    wait_for("every worker to return", lambda: len(finished) == len(INTEGRATIONS), 30)
    assert len(started) <= CONCURRENCY < len(INTEGRATIONS)
    assert len(produced) < len(KEYS)
    outcomes.close()


def test_a_canceling_run_whose_interrupt_never_came_fails_the_rest_as_stopped(monkeypatch) -> None:
    started: list[str] = []
    produced: list[str] = []
    run, instance = _watched_run(monkeypatch, started, produced, [])
    outcomes = run.outcomes(KEYS)
    first = next(outcomes)
    instance.cancel()
    every = [first, *outcomes]
    assert run.stopped
    assert sorted(o.partition.key for o in every) == sorted(KEYS)
    landed = [o for o in every if o.status is Status.MATERIALIZED]
    stopped = [o for o in every if o.status is Status.FAILED]
    assert len(landed) == len(produced) and stopped
    assert {o.error_class for o in stopped} == {ErrorClass.STOPPED}
