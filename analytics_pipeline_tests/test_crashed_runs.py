"""Runs launched by `analytics-pipeline backfill` live in a code server's run worker: a worker
killed with SIGKILL is marked failed and its partitions stop being in progress, and the CLI
reports the failure. Also: a fresh DAGSTER_HOME initialized by several processes at once.

Real processes: the CLI, `dagster job launch`, its code server and run worker; the sandbox
(in this process) answers slowly so the run is still going when its worker is killed.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from analytics_pipeline.defs.dagster_home import READY_MARKER
from analytics_pipeline.defs.settle import run_materializations, settled_materializations
from analytics_pipeline.records import AssetName
from analytics_pipeline.warehouse import make_engine, run_ledger
from analytics_pipeline.warehouse.migrations import migrate
from analytics_pipeline_tests.helpers import run_worker_pid, track_facebook_pages, wait_for
from analytics_sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOKEN_ENV = "CRASH_TEST_TOKEN"
HANG_GUARD_S = 300
IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def _env(tmp_path: Path, sandbox: SandboxServer) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DAGSTER_HOME=str(tmp_path / "home"),
        ANALYTICS_WAREHOUSE_URL=f"sqlite:///{tmp_path / 'w.sqlite'}",
        ANALYTICS_FACEBOOK_BASE_URL=sandbox.base_url,
        **{TOKEN_ENV: "sandbox-token"},
    )
    return env


def _worker_pid(instance: dg.DagsterInstance) -> tuple[str, int] | None:
    """(run id, pid of its run worker) once a run has started its worker process."""
    for run in instance.get_runs():
        pid = run_worker_pid(instance, run.run_id)
        if pid is not None:
            return run.run_id, pid
    return None


def test_a_killed_run_worker_fails_its_run_and_the_cli_says_so(tmp_path, monkeypatch):
    with SandboxServer() as sandbox:
        sandbox.faults.latency_ms = 1500  # every request is slow: the run lasts
        env = _env(tmp_path, sandbox)
        engine = make_engine(env["ANALYTICS_WAREHOUSE_URL"])
        migrate(engine)
        track_facebook_pages(engine, {"crash-fb": "1000001"}, TOKEN_ENV, "crash-org")
        day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        cli = subprocess.Popen(
            [str(BIN / "analytics-pipeline"), "backfill", "--start", str(day), "--end", str(day)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
            # Not before the CLI initialized the fresh home (opening it meanwhile is the race
            # `ensure_dagster_home` exists for).
            ready = tmp_path / "home" / READY_MARKER
            wait_for("the DAGSTER_HOME", ready.exists, 120)
            with dg.DagsterInstance.get() as instance:
                run_id, pid = wait_for("a run worker", lambda: _worker_pid(instance), 240)
                wait_for("the first requests", lambda: sandbox.request_count() > 0, 120)
                os.kill(pid, signal.SIGKILL)
                killed = time.monotonic()
                run = wait_for(
                    "the run to be marked failed",
                    lambda: (r := instance.get_run_by_id(run_id)) and r.is_finished and r,
                    HANG_GUARD_S,
                )
                marked_s = time.monotonic() - killed
                assert run.status == dg.DagsterRunStatus.FAILURE
                assert not instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS))
            out, _ = cli.communicate(timeout=HANG_GUARD_S)
        finally:
            if cli.poll() is None:
                cli.kill()
    print(f"crashed run marked FAILURE {marked_s:.1f}s after SIGKILL of its worker")
    assert cli.returncode == 1, out
    assert f"run {run_id}:" in out and "ok" not in out.split(f"run {run_id}:")[1].splitlines()[0]
    # Every partition of the crashed run is accounted for (issue 10, item 4): materialized
    # (in the run, or after it for what it committed) or a failure row naming the run.
    assert "not materialized" not in out
    with dg.DagsterInstance.get() as instance:
        materialized = run_materializations(instance, run_id)
        with engine.connect() as conn:
            ledger = run_ledger(conn, run_id)
        materialized |= settled_materializations(instance, run_id, ledger.loads)
    planned = {f"{asset.value}:{day}|crash-fb" for asset in AssetName}
    assert materialized | set(ledger.failures) == planned
    assert not materialized & set(ledger.failures)
    assert set(ledger.loads) == materialized


@pytest.mark.parametrize("processes", [4])
def test_a_fresh_dagster_home_initialized_by_several_processes_at_once(tmp_path, processes):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "home")}
    code = (
        "from analytics_pipeline.defs.dagster_home import ensure_dagster_home; "
        "import dagster as dg; ensure_dagster_home(); "
        "i = dg.DagsterInstance.get(); i.all_instigator_state(); i.get_runs(limit=1); print('ok')"
    )
    started = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    outputs = [proc.communicate(timeout=HANG_GUARD_S)[0] for proc in started]
    assert [proc.returncode for proc in started] == [0] * processes
    assert all(out.strip().endswith("ok") for out in outputs)
    # The schedule storage opens and has exactly one Alembic head.
    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        instance.upgrade(print_fn=lambda _message: None)
        assert instance.all_instigator_state() == []
