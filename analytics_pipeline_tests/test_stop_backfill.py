"""Stop means stop (issue 10): SIGTERM to a real `analytics-pipeline backfill` process.

The command runs against a sandbox with latency (or one that asks for long usage pauses); it is
sent SIGTERM mid-run and must exit non-zero promptly, say what landed and what did not, send no
further request, and leave one Dagster run that failed after ONE step attempt (no retry).
Bounds on time here are hang guards, not performance assertions.
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
import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.records import AssetName, ContentPartition
from analytics_pipeline.warehouse import tables
from analytics_pipeline.warehouse.migrations import migrate
from analytics_pipeline_tests.helpers import track_facebook_pages
from analytics_sandbox.server import SandboxServer

TOKEN_ENV = "ANALYTICS_TEST_STOP_TOKEN"
TOKEN = "tok-SECRET-stop-3c9d0e4f"
PAGES = {f"fb-{n}": str(1000001 + n) for n in range(6)}
END = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
START = END - dt.timedelta(days=6)
READ_TIMEOUT_S = 10
# Hang guard: the stop must end the command within 10 s plus one in-flight request timeout
# (and the interpreter's exit); generous on a loaded 2-core machine.
EXIT_BOUND_S = 10 + READ_TIMEOUT_S + 15
CLI = str(Path(sys.executable).with_name("analytics-pipeline"))


def _command_env(tmp_path: Path, sandbox: SandboxServer, url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ANALYTICS_WAREHOUSE_URL": url,
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            "ANALYTICS_FACEBOOK_BASE_URL": sandbox.base_url,
            "ANALYTICS_HTTP_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
            TOKEN_ENV: TOKEN,
            **extra,
        }
    )
    return env


def _loads(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(tables.partition_loads)) or 0


def _wait_for(condition, deadline_s: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert process.poll() is None, "the backfill ended before it could be stopped"
        assert time.monotonic() < deadline, "the backfill never got going"
        time.sleep(0.1)


@pytest.mark.parametrize("slowness", ["latency", "usage_pauses"])
def test_sigterm_stops_a_cli_backfill_without_a_retry(tmp_path, monkeypatch, slowness):
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    engine = wh.make_engine(url)
    migrate(engine)
    track_facebook_pages(engine, PAGES, TOKEN_ENV, organization_id="org-stop")
    extra: dict[str, str] = {}
    with SandboxServer() as sandbox:
        if slowness == "latency":
            sandbox.faults.latency_ms = 400
            started = lambda: _loads(engine) >= 2  # noqa: E731 (some partitions committed)
        else:
            # Usage headers at 95 %: every request is followed by a long pause (issue 10: 45 s).
            sandbox.faults.rate_limit_usage_pct = 95
            extra["ANALYTICS_FACEBOOK_USAGE_MAX_PAUSE_S"] = "45"
            started = lambda: sandbox.request_count() >= 3  # noqa: E731
        process = subprocess.Popen(
            [CLI, "backfill", "--start", START.isoformat(), "--end", END.isoformat()],
            env=_command_env(tmp_path, sandbox, url, **extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for(started, 120, process)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            out, err = process.communicate(timeout=EXIT_BOUND_S)
            stop_latency = time.monotonic() - signalled
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        requests_at_exit = sandbox.request_count()
        time.sleep(1.5)
        assert sandbox.request_count() == requests_at_exit, "requests after the exit"
    print(f"stop latency ({slowness}): {stop_latency:.1f} s; requests: {requests_at_exit}")

    assert process.returncode == 128 + signal.SIGTERM, (out, err)
    assert "Traceback" not in err and TOKEN not in out + err

    assert "STOPPED" in out and "ok" not in out.split()
    assert "not materialized" not in out  # every partition is accounted for
    printed_failed = {
        line.rsplit(": ", 1)[1] for line in out.splitlines() if line.startswith("  failed (")
    }
    assert all(
        "failed (stopped)" in line for line in out.splitlines() if line.startswith("  failed (")
    )

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs()
        assert run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
        logs = instance.all_logs(run.run_id)
        starts = [e for e in logs if e.dagster_event_type == dg.DagsterEventType.STEP_START]
        retries = [e for e in logs if e.dagster_event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
        assert (len(starts), len(retries)) == (1, 0)
        in_run = {_label(e.asset_materialization) for e in logs if e.asset_materialization}
        settled = _settled_for(instance, run.run_id)
    every = {
        f"{asset.value}:{ContentPartition(START + dt.timedelta(days=n), iid).key}"
        for asset in AssetName
        for n in range(7)
        for iid in PAGES
    }
    with engine.connect() as conn:
        failed = {
            f"{row.asset}:{row.partition_key}": row.error_class
            for row in conn.execute(
                sa.select(tables.ingestion_failures).where(
                    tables.ingestion_failures.c.run_id == run.run_id
                )
            )
        }
        loaded = {
            f"{row.asset}:{ContentPartition(row.partition_date, row.integration_id).key}"
            for row in conn.execute(
                sa.select(tables.partition_loads).where(
                    tables.partition_loads.c.run_id == run.run_id
                )
            )
        }
    materialized = in_run | settled
    # Every planned partition is materialized or has a `stopped` row of this run, never both;
    # nothing is in the warehouse without its materialization; the CLI names every failure.
    assert materialized | set(failed) == every and not materialized & set(failed)
    assert set(failed.values()) <= {"stopped"} and failed, "the stop came too late"
    assert loaded == materialized
    assert printed_failed == set(failed)
    path = "settled after the run" if settled or not _step_accounted(logs) else "by the step"
    print(
        f"stop accounted {path}: {len(in_run)} + {len(settled)} materialized, {len(failed)} stopped"
    )
    engine.dispose()


def _label(materialization: dg.AssetMaterialization) -> str:
    return f"{materialization.asset_key.to_user_string()}:{materialization.partition}"


def _settled_for(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    """Partitions materialized after the run ended on its behalf (runless, naming the run)."""
    labels = set()
    for asset in AssetName:
        records = instance.fetch_materializations(dg.AssetKey(asset.value), limit=10_000).records
        for record in records:
            materialization = record.asset_materialization
            entry = materialization.metadata.get("settled_for_run") if materialization else None
            if entry is not None and entry.value == run_id:
                labels.add(_label(materialization))
    return labels


def _step_accounted(logs) -> bool:
    """The step's own failure says it was stopped (its account, not the settlement's)."""
    for entry in logs:
        event = entry.dagster_event
        if event is not None and event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data.user_failure_data
            if data is not None and data.metadata.get("stopped") is not None:
                return bool(data.metadata["stopped"].value)
    return False


def test_the_backfill_summary_names_skipped_and_failed_partitions_by_class(
    tmp_path, monkeypatch, capsys
):
    from analytics_pipeline.cli import main

    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    engine = wh.make_engine(url)
    migrate(engine)
    pages = {"fb-ok": "1000001", "fb-expired": "1000002", "fb-paused": "1000003"}
    track_facebook_pages(engine, pages, TOKEN_ENV, organization_id="org-summary")
    with engine.begin() as conn:
        wh.set_integration_status(
            conn, "fb-paused", "paused", "offboarding", dt.datetime.now(dt.UTC)
        )
    with SandboxServer() as sandbox:
        sandbox.faults.expire_token(pages["fb-expired"])
        for name, value in _command_env(tmp_path, sandbox, url).items():
            monkeypatch.setenv(name, value)
        code = main(["backfill", "--start", START.isoformat(), "--end", END.isoformat()])
        assert sandbox.request_count(page_id=pages["fb-paused"]) == 0
    out = capsys.readouterr().out
    per_integration = len(AssetName) * 7
    assert code == 1
    assert f"{per_integration} partitions skipped: fb-paused paused (offboarding)" in out
    assert f"{per_integration} FAILED ({per_integration} permanent_credential)" in out
    failed = [line for line in out.splitlines() if line.startswith("  failed (")]
    assert len(failed) == per_integration
    assert all("fb-expired" in line for line in failed)
    assert " 0 FAILED" not in out and "ok" not in out.split()
    assert "not materialized" not in out  # the paused ones are reported as skipped
    engine.dispose()
