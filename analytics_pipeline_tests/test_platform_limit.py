"""Requests to one platform are capped across concurrent runs by Dagster's run queue.

A real `dagster-daemon` with the project's dagster.yaml (at most 4 runs, at most 2 per
`analytics/platform` tag). `analytics-pipeline backfill` sees the daemon and queues its runs:
with ANALYTICS_MAX_INTEGRATIONS_PER_RUN=1 that is 4 Facebook runs and 1 Instagram run. The
sandbox answers slowly so runs overlap. From the runs' own start/end times: never more than 2
Facebook runs at once, but 2 at some point (the limit is reached, not just respected by
accident), and the Instagram run overlaps Facebook ones (the limit is per platform).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from analytics_pipeline.defs.dagster_home import READY_MARKER
from analytics_pipeline.defs.partitions import INTEGRATIONS_PARTITIONS_NAME, PLATFORM_TAG
from analytics_pipeline.warehouse import add_integration, make_engine
from analytics_pipeline.warehouse.migrations import migrate
from analytics_pipeline_tests.helpers import wait_for
from analytics_sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TOKEN_ENV = "LIMIT_TEST_TOKEN"
HANG_GUARD_S = 420
ACCOUNTS = [(f"lim-fb-{n}", "facebook", str(1000001 + n)) for n in range(4)] + [
    ("lim-ig-1", "instagram", "17841400000000001")
]


def _track(url: str) -> None:
    engine = make_engine(url)
    migrate(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        for integration_id, platform, account in ACCOUNTS:
            add_integration(
                conn,
                organization_id="lim-org",
                integration_id=integration_id,
                platform=platform,
                external_account_id=account,
                display_name=integration_id,
                credential_env=TOKEN_ENV,
                now=now,
            )


IN_PROGRESS = {"STARTING", "STARTED"}


def _sample(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    """Statuses of the ingestion runs now, per platform tag (the KPI sensor's runs have none)."""
    by_platform: dict[str, list[str]] = {}
    for run in instance.get_runs():
        if PLATFORM_TAG in run.tags:
            by_platform.setdefault(run.tags[PLATFORM_TAG], []).append(run.status.value)
    return by_platform


def _limit_reached(sample: dict[str, list[str]]) -> bool:
    """2 Facebook runs and the Instagram run in progress, the other 2 Facebook runs queued."""
    facebook, instagram = sample.get("facebook", []), sample.get("instagram", [])
    return (
        sorted(facebook) == sorted(["QUEUED", "QUEUED", *[s for s in facebook if s in IN_PROGRESS]])
        and sum(s in IN_PROGRESS for s in facebook) == 2
        and any(s in IN_PROGRESS for s in instagram)
    )


def test_at_most_two_runs_per_platform_run_at_once(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copyfile(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    with SandboxServer() as sandbox:
        sandbox.faults.latency_ms = 5000  # runs stay in progress while the queue is sampled
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "ANALYTICS_WAREHOUSE_URL": f"sqlite:///{tmp_path / 'w.sqlite'}",
            "ANALYTICS_MAX_INTEGRATIONS_PER_RUN": "1",
            "ANALYTICS_FACEBOOK_BASE_URL": sandbox.base_url,
            "ANALYTICS_INSTAGRAM_BASE_URL": sandbox.base_url,
            TOKEN_ENV: "sandbox-token",
        }
        _track(env["ANALYTICS_WAREHOUSE_URL"])
        subprocess.run([str(BIN / "analytics-pipeline"), "init-dagster-home"], env=env, check=True)
        assert (home / READY_MARKER).exists()
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.get() as instance:
            # Before the daemon starts: its sensor then requests no initial runs.
            ids = [integration_id for integration_id, *_ in ACCOUNTS]
            instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, ids)
        daemon = subprocess.Popen(
            # The project's workspace.yaml: its location name is the one the CLI's runs name.
            [str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        cli = None
        try:
            with dg.DagsterInstance.get() as instance:
                beat = "QUEUED_RUN_COORDINATOR"
                wait_for(
                    "the daemon", lambda: beat in instance.get_daemon_heartbeats(), 240, every=1
                )
                day = str(dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
                cli = subprocess.Popen(
                    [str(BIN / "analytics-pipeline"), "backfill", "--start", day, "--end", day],
                    env=env,
                    cwd=tmp_path,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                samples: list[dict[str, list[str]]] = []

                def reached() -> bool:
                    samples.append(_sample(instance))
                    return _limit_reached(samples[-1])

                wait_for("2 Facebook runs and the Instagram run in progress", reached, 300, every=1)
                for _ in range(10):  # and it stays within the limit a while longer
                    samples.append(_sample(instance))
                    time.sleep(0.5)
                # Ctrl-C of the waiting CLI: its runs are cancelled, none is orphaned.
                cli.send_signal(signal.SIGINT)
                out, _ = cli.communicate(timeout=HANG_GUARD_S)
                left = wait_for(
                    "every run to end",
                    lambda: (
                        all(
                            status not in IN_PROGRESS | {"QUEUED", "CANCELING"}
                            for statuses in _sample(instance).values()
                            for status in statuses
                        )
                        and _sample(instance)
                    ),
                    HANG_GUARD_S,
                    every=1,
                )
        finally:
            if cli is not None and cli.poll() is None:
                cli.kill()
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
    peak = max(sum(s in IN_PROGRESS for s in sample.get("facebook", [])) for sample in samples)
    print(f"{len(samples)} samples: peak Facebook runs in progress {peak}; after Ctrl-C {left}")
    assert peak == 2
    assert cli.returncode == 130, out
    # Nothing is left queued or running (awaited above), and the CLI cancelled what it could:
    # at least one Facebook run (queued ones, unless the daemon started them meanwhile).
    assert sorted(left["facebook"]).count("CANCELED") >= 1
