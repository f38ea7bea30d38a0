"""The ingestion step's worker pool: outcomes stream back per partition, and a step that is
left early (a terminated run) stops its workers instead of finishing the whole backfill."""

from __future__ import annotations

import datetime as dt
import threading
import time
from types import SimpleNamespace

from analytics_pipeline.defs import integration_run as ingestion
from analytics_pipeline.defs.assets import (
    ACCOUNT_DAILY_METRICS,
    CONTENT_DAILY_METRICS,
    CONTENT_METADATA,
)
from analytics_pipeline.ingest import IngestOptions, PartitionOutcome, Status
from analytics_pipeline.records import AssetName, ContentPartition, ErrorClass

DAYS = [dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(5)]
CONCURRENCY = 4
INTEGRATIONS = [f"int-{n}" for n in range(3 * CONCURRENCY)]


KEYS = [ContentPartition(day, i).key for day in DAYS for i in INTEGRATIONS]
OPTIONS = IngestOptions(
    lookback_days=1, snapshot_cutoff=dt.timedelta(hours=2), partitions_start=DAYS[0]
)


def _context() -> SimpleNamespace:
    silent = SimpleNamespace(info=lambda _m: None, error=lambda _m: None, warning=lambda _m: None)
    selected = {CONTENT_METADATA, CONTENT_DAILY_METRICS, ACCOUNT_DAILY_METRICS}
    return SimpleNamespace(selected_asset_keys=selected, log=silent, retry_number=0)


def _slow_ingest(started: list[str], produced: list[str]):
    lock = threading.Lock()

    def ingest(_engine, _factory, request, _options):
        with lock:
            started.append(request.integration_id)
        for day in request.days:
            time.sleep(0.01)
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
    monkeypatch.setattr(ingestion, "landed_partitions", lambda _context: set())
    platforms = SimpleNamespace(
        create_client=None, max_concurrency=CONCURRENCY, pacer=lambda _stop: None
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
    monkeypatch.setattr(ingestion, "landed_partitions", lambda _context: set())
    platforms = SimpleNamespace(
        create_client=None, max_concurrency=CONCURRENCY, pacer=lambda _stop: None
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
