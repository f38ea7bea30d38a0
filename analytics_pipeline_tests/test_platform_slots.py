"""The ingestion step takes a platform slot before fetching (defs/platform_slots.py): concurrent
runs of one platform fetch at most ANALYTICS_MAX_RUNS_PER_PLATFORM at once however they were
launched (here: plain in-process materializations without any run tag), and a stop while
waiting for a slot ends the step as stopped, without a request and without a retry.

Concurrency is measured from the sandbox's request log: each run covers its own page, so a
run fetched from its page's first to its last request (by the log's sequence numbers, not by
clock times)."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline import stop
from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.assets import social_ingestion
from analytics_pipeline.defs.partitions import INTEGRATIONS_PARTITIONS_NAME, range_run_tags
from analytics_pipeline.defs.resources import WarehouseResource
from analytics_pipeline.warehouse import slots, tables
from analytics_pipeline_tests.helpers import (
    facebook_sandbox_platforms,
    facebook_warehouse,
    wait_for,
)
from analytics_sandbox.server import SandboxServer

TOKEN_ENV = "ANALYTICS_TEST_SLOTS_TOKEN"
TOKEN = "tok-SECRET-slots-8d2f41"
PAGES = {"fb-1": "1000001", "fb-2": "1000002", "fb-3": "1000003"}
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=1)
START = END - dt.timedelta(days=2)
RUN_AT = dt.datetime.combine(TODAY, dt.time(1, 30), tzinfo=dt.UTC)
HANG_GUARD_S = 120


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer() as server:
        yield server


@pytest.fixture
def env(sandbox, tmp_path, monkeypatch):
    url, engine = facebook_warehouse(
        tmp_path, monkeypatch, sandbox, (TOKEN_ENV, TOKEN), PAGES, RUN_AT, "org-slots"
    )
    yield {"engine": engine, "url": url, "sandbox": sandbox}
    engine.dispose()


def _materialize(env, instance, integration_id: str, limit: int):
    return dg.materialize(
        [social_ingestion],
        instance=instance,
        resources={
            "warehouse": WarehouseResource(url=env["url"]),
            "platforms": facebook_sandbox_platforms(
                env["sandbox"].base_url, ANALYTICS_MAX_RUNS_PER_PLATFORM=str(limit)
            ),
        },
        tags=range_run_tags(START, END, [integration_id]),
        raise_on_error=False,
    )


def _most_at_once(sandbox: SandboxServer) -> int:
    """The most pages whose runs were fetching at once: a run fetches from its page's first
    request to its last (sequence numbers of the sandbox's log)."""
    spans = {}
    for page in PAGES.values():
        seqs = [record.seq for record in sandbox.requests(page_id=page)]
        assert seqs, f"no request for page {page}"
        spans[page] = (min(seqs), max(seqs))
    return max(
        sum(first <= seq <= last for first, last in spans.values()) for seq, _ in spans.values()
    )


def _run_in_child(env, integration_id: str, limit: int, start, out) -> None:
    """One run in a process of its own (Dagster's in-process runs are not for threads: their
    logging deadlocks), reporting (integration, success, waited for a slot)."""
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, list(PAGES))
        start.wait()
        result = _materialize(env, instance, integration_id, limit)
        out.put((integration_id, result.success, _waiting(instance)))


@pytest.mark.parametrize("limit", [2, 3])
def test_concurrent_runs_of_one_platform_fetch_at_most_the_limit_at_once(env, limit):
    """Three runs of one platform (three processes) start together; the sandbox answers
    slowly. With 2 slots never 3 fetching at once, but 2 at some point, and one run waited;
    with 3 slots (the control) all 3 at once."""
    env["sandbox"].faults.latency_ms = 250  # long enough to overlap on a loaded machine
    context = multiprocessing.get_context("fork")
    start, out = context.Barrier(len(PAGES)), context.Queue()
    children = [
        context.Process(target=_run_in_child, args=(env, iid, limit, start, out)) for iid in PAGES
    ]
    for child in children:
        child.start()
    reports = [out.get(timeout=HANG_GUARD_S) for _ in children]
    for child in children:
        child.join(HANG_GUARD_S)
    assert sorted(iid for iid, _, _ in reports) == sorted(PAGES)
    assert all(success for _, success, _ in reports)
    assert _most_at_once(env["sandbox"]) == limit
    assert sum(waited for _, _, waited in reports) == len(PAGES) - limit
    with env["engine"].connect() as conn:  # every slot released
        assert conn.execute(sa.select(tables.platform_slots)).all() == []


def test_a_stop_while_waiting_for_a_slot_ends_the_step_as_stopped(env):
    """Another run holds the only Facebook slot; the step waits, a stop arrives: the step
    fails as stopped (not retried), no request was sent, every partition has a `stopped`
    row, and the other run's slot is untouched."""
    with env["engine"].begin() as conn:
        assert slots.acquire(conn, "facebook", "other-run", 1, dt.datetime.now(dt.UTC))
    results: list[dg.ExecuteInProcessResult] = []
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, list(PAGES))
        thread = threading.Thread(
            target=lambda: results.append(_materialize(env, instance, "fb-1", limit=1))
        )
        thread.start()
        try:
            wait_for("the step to wait for a slot", lambda: _waiting(instance), HANG_GUARD_S)
            stop.request_stop()
            thread.join(HANG_GUARD_S)
        finally:
            stop.clear_stop()
            thread.join(HANG_GUARD_S)
    (result,) = results
    assert not result.success
    events = {event.event_type for event in result.all_events}
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in events
    assert dg.DagsterEventType.ASSET_MATERIALIZATION not in events
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    metadata = {k: v.value for k, v in failure.step_failure_data.user_failure_data.metadata.items()}
    assert metadata["stopped"] is True and metadata["retryable"] is False
    assert env["sandbox"].request_count() == 0
    with env["engine"].connect() as conn:
        rows = [row for row in wh.open_failures(conn) if row.run_id == result.run_id]
        held = conn.execute(sa.select(tables.platform_slots.c.holder)).scalars().all()
    assert rows and len(rows) == len(metadata["failed_partitions"])
    assert {row.error_class for row in rows} == {"stopped"}
    assert held == ["other-run"]


def _waiting(instance: dg.DagsterInstance) -> bool:
    for run in instance.get_runs():
        for entry in instance.all_logs(run.run_id):
            if "Waiting for a facebook slot" in (entry.user_message or ""):
                return True
    return False
