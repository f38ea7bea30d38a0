"""Backfills through the daemon: how many runs a real backfill launches and how long it takes.

Each invocation builds a throwaway world (DAGSTER_HOME with a copy of ./dagster.yaml, a SQLite
warehouse, the sandbox Graph API on 127.0.0.1), tracks N sandbox Facebook pages, starts
`dagster-daemon run` and `dagster-webserver`, launches ONE asset backfill over the last D complete
UTC days x the N integrations for every asset of `ingestion_job` with the GraphQL
`launchPartitionBackfill` mutation (the UI's path), waits for it, prints one JSON line and tears
everything down (process groups, temp dir), also on failure or Ctrl-C.

The integration partitions are added BEFORE the daemon starts, so `tracked_integrations_sensor`
finds nothing new and requests no initial lookback-window runs; `other_runs` in the output shows
any run not launched by the backfill (sensor or schedule) that shared the run queue.

    .venv/bin/python -m benchmarks.backfill_daemon --days 7 --integrations 3 [--latency-ms 0]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import requests

from analytics_pipeline.defs.partitions import INTEGRATIONS_PARTITIONS_NAME, SETTINGS
from analytics_pipeline.records import ContentPartition

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
JOB_NAME = "ingestion_job"
DEFS_MODULE = "analytics_pipeline.definitions"
TOKEN_ENV = "BENCH_FB_TOKEN"  # noqa: S105 (the variable's NAME)
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
TABLES = ("content_items", "content_metrics_daily", "account_metrics_daily")

HTTP = requests.Session()
HTTP.trust_env = False  # 127.0.0.1 only: never through a proxy from the environment


class BenchError(RuntimeError):
    """The benchmark could not set up, launch or finish its backfill."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    what: str, probe: Callable[[], Any], timeout_s: float, procs: Processes | None = None
) -> Any:
    """Calls probe until it returns something truthy (connection errors count as not yet).

    BenchError after timeout_s, or at once if one of `procs` has exited or probe raises it.
    """
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if procs is not None:
            procs.check_alive()
        try:
            result = probe()
        except requests.RequestException as exc:
            last, result = exc, None
        if result:
            return result
        time.sleep(0.5)
    raise BenchError(f"Timed out after {timeout_s:.0f} s waiting for {what} (last error: {last})")


def _reset_sigint() -> None:
    # A process started from a background shell inherits SIGINT ignored; dagster then ignores it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Processes:
    """The long-running processes of one scenario, each the leader of its own process group."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir = env, log_dir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        with (self.log_dir / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_reset_sigint,  # no threads yet: preexec_fn is safe here
            )
        self.started.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.started:
            if proc.poll() is not None:
                raise BenchError(f"{name} exited with status {proc.returncode}")

    def stop_all(self) -> None:
        """Stops every group, newest first: SIGINT, then SIGTERM, then SIGKILL."""
        for _name, proc in reversed(self.started):
            for sig, grace_s in ((signal.SIGINT, 20), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                if not _signal_group(proc.pid, sig):
                    break
                deadline = time.monotonic() + grace_s
                while time.monotonic() < deadline and _signal_group(proc.pid, 0):
                    proc.poll()  # reaps the leader, so a finished group really is empty
                    time.sleep(0.2)

    def tails(self, lines: int = 25) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path.name} (last {lines} lines)\n" + "\n".join(text))
        return "\n".join(parts)


def _signal_group(pgid: int, sig: int) -> bool:
    """True if the group still had members to signal (signal 0 only tests)."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def leftover_pids(marker: str) -> list[int]:
    """Processes whose environment names this scenario's temp dir: only ours can."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def run_cli(env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [str(BIN / "analytics-pipeline"), *args], cwd=ROOT, env=env, capture_output=True
    )
    if done.returncode != 0:
        raise BenchError(f"analytics-pipeline {args[0]} failed: {done.stderr.decode()[-2000:]}")


class GraphQL:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/graphql"

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        resp = HTTP.post(self.url, json={"query": query, "variables": variables}, timeout=60)
        resp.raise_for_status()
        payload = resp.json()
        if payload.get("errors"):
            raise BenchError(f"GraphQL errors: {payload['errors']}")
        return dict(payload["data"])


WORKSPACE_Q = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on RepositoryLocation { name repositories { name } }
  ... on PythonError { message } } } } } }"""

ASSET_NODES_Q = """query($sel: PipelineSelector!) { assetNodes(pipeline: $sel) { assetKey { path } }
}"""

DAEMONS_Q = (
    """{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"""
)

LAUNCH_M = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""

BACKFILL_Q = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status numPartitions error { message } }
  ... on Error { message } } }"""

RUNS_Q = """query($filter: RunsFilter) { runsOrError(filter: $filter) { __typename
  ... on Runs { results { runId status startTime endTime tags { key value } } }
  ... on Error { message } } }"""

LOGS_Q = """query($runId: ID!) { logsForRun(runId: $runId) { __typename
  ... on EventConnection { events { __typename ... on MessageEvent { message }
  ... on ErrorEvent { error { message } } } } } }"""


def loaded_location(gql: GraphQL) -> tuple[str, str] | None:
    """(location, repository) once the code location loaded; BenchError if it failed to load."""
    entries = gql(WORKSPACE_Q)["workspaceOrError"].get("locationEntries") or []
    for entry in entries:
        loc = entry.get("locationOrLoadError") or {}
        if loc.get("__typename") == "PythonError":
            raise BenchError(f"Code location {entry['name']} failed to load: {loc['message']}")
        if entry["loadStatus"] == "LOADED" and loc.get("__typename") == "RepositoryLocation":
            return loc["name"], loc["repositories"][0]["name"]
    return None


def daemons_healthy(gql: GraphQL) -> bool:
    statuses = gql(DAEMONS_Q)["instance"]["daemonHealth"]["allDaemonStatuses"]
    return all(s["healthy"] for s in statuses if s["required"])


def job_asset_keys(gql: GraphQL, location: str, repository: str) -> list[list[str]]:
    selector = {
        "repositoryLocationName": location,
        "repositoryName": repository,
        "pipelineName": JOB_NAME,
    }
    nodes = gql(ASSET_NODES_Q, sel=selector)["assetNodes"]
    if not nodes:
        raise BenchError(f"{JOB_NAME} selects no assets in {location}/{repository}")
    return sorted(node["assetKey"]["path"] for node in nodes)


def launch_backfill(
    gql: GraphQL, asset_keys: list[list[str]], start: str, end: str, title: str
) -> str:
    """One asset backfill; `start`/`end` are multi-partition keys spanning the cross product."""
    params = {
        "title": title,
        "partitionsByAssets": [
            {"assetKey": {"path": key}, "partitions": {"range": {"start": start, "end": end}}}
            for key in asset_keys
        ],
    }
    result = gql(LAUNCH_M, params=params)["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise BenchError(
            f"launchPartitionBackfill: {result['__typename']}: {result.get('message')}"
        )
    return str(result["backfillId"])


def backfill_state(gql: GraphQL, backfill_id: str) -> dict[str, Any]:
    state = gql(BACKFILL_Q, id=backfill_id)["partitionBackfillOrError"]
    if state["__typename"] != "PartitionBackfill":
        raise BenchError(f"partitionBackfillOrError: {state['__typename']}: {state.get('message')}")
    return dict(state)


def all_runs(gql: GraphQL) -> list[dict[str, Any]]:
    result = gql(RUNS_Q, filter={})["runsOrError"]
    if result["__typename"] != "Runs":
        raise BenchError(f"runsOrError: {result['__typename']}: {result.get('message')}")
    return list(result["results"])


def failure_reason(gql: GraphQL, run_id: str) -> str:
    """The first step failure of a run (else its run failure message), shortened."""
    logs = gql(LOGS_Q, runId=run_id)["logsForRun"]
    events = logs.get("events") or []
    for kind in ("ExecutionStepFailureEvent", "RunFailureEvent"):
        for event in events:
            if event["__typename"] == kind:
                error = event.get("error") or {}
                return str(error.get("message") or event.get("message"))[:400]
    return f"no failure event ({logs['__typename']})"


def row_counts(warehouse: Path) -> dict[str, int | None]:
    counts: dict[str, int | None] = {}
    with sqlite3.connect(warehouse) as conn:
        for table in TABLES:
            try:
                counts[table] = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            except sqlite3.OperationalError:  # table not in this schema version
                counts[table] = None
    return counts


def summarize(mine: list[dict[str, Any]], other_runs: int, launched_at: float) -> dict[str, Any]:
    """Counts, statuses and durations of the backfill's runs."""
    durations = [r["endTime"] - r["startTime"] for r in mine if r["startTime"] and r["endTime"]]
    statuses: dict[str, int] = {}
    for run in mine:
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
    starts = [r["startTime"] for r in mine if r["startTime"]]
    ends = [r["endTime"] for r in mine if r["endTime"]]
    return {
        "runs_launched": len(mine),
        "runs_succeeded": statuses.get("SUCCESS", 0),
        "runs_failed": statuses.get("FAILURE", 0),
        "run_statuses": statuses,
        "run_retries": sum(
            any(t["key"] == "dagster/parent_run_id" for t in r["tags"]) for r in mine
        ),
        "other_runs": other_runs,
        "mean_run_s": round(statistics.fmean(durations), 2) if durations else None,
        "max_run_s": round(max(durations), 2) if durations else None,
        "run_s": sorted(round(d, 1) for d in durations),
        "first_run_start_s": round(min(starts) - launched_at, 2) if starts else None,
        "last_run_end_s": round(max(ends) - launched_at, 2) if ends else None,
    }


def scenario_dates(days: int) -> tuple[dt.date, dt.date]:
    """The last `days` complete UTC days."""
    end = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=days - 1)
    if start < SETTINGS.partitions_start_date:
        raise BenchError(f"{start} is before the first date partition; use fewer --days.")
    return start, end


def run_scenario(args: argparse.Namespace, tmp: Path, procs: Processes) -> dict[str, Any]:
    began = time.monotonic()
    start, end = scenario_dates(args.days)
    home, warehouse = tmp / "dagster_home", tmp / "w.sqlite"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    sandbox_port, web_port = free_port(), free_port()
    env = procs.env  # every process started below gets these
    env.update(
        DAGSTER_HOME=str(home),
        ANALYTICS_WAREHOUSE_URL=f"sqlite:///{warehouse}",
        ANALYTICS_FACEBOOK_BASE_URL=f"http://127.0.0.1:{sandbox_port}",
        **{TOKEN_ENV: "bench-sandbox-token"},  # the sandbox accepts any token
    )

    procs.start("sandbox", str(BIN / "analytics-pipeline"), "sandbox", "--port", str(sandbox_port))
    sandbox = f"http://127.0.0.1:{sandbox_port}/_sandbox"
    wait_for("the sandbox", lambda: HTTP.get(f"{sandbox}/health", timeout=5).ok, 60, procs)
    if args.latency_ms:
        faults = {"latency_ms": args.latency_ms}
        HTTP.post(f"{sandbox}/faults", json=faults, timeout=5).raise_for_status()

    run_cli(env, "init-db")
    integrations = [f"bench-fb-{n}" for n in range(args.integrations)]
    for n, integration_id in enumerate(integrations):
        account = ["--platform", "facebook", "--account", str(1000001 + n)]
        add = ["integrations", "add", "--org", "bench", "--id", integration_id, *account]
        run_cli(env, *add, "--token-env", TOKEN_ENV)
    # Added before the daemon starts, in this order (the order multi-partition ranges follow):
    # the sensor then sees no new integration and requests no initial runs.
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, integrations)

    procs.start("daemon", str(BIN / "dagster-daemon"), "run", "-m", DEFS_MODULE)
    web = ["-m", DEFS_MODULE, "-h", "127.0.0.1", "-p", str(web_port)]
    procs.start("webserver", str(BIN / "dagster-webserver"), *web)
    gql = GraphQL(web_port)

    location, repository = wait_for("the code location", lambda: loaded_location(gql), 180, procs)
    wait_for("healthy daemons", lambda: daemons_healthy(gql), 180, procs)
    asset_keys = job_asset_keys(gql, location, repository)
    setup_s = time.monotonic() - began

    launched_at, t0 = time.time(), time.monotonic()
    backfill_id = launch_backfill(
        gql,
        asset_keys,
        ContentPartition(start, integrations[0]).key,
        ContentPartition(end, integrations[-1]).key,
        f"bench {args.days}d x {args.integrations}",
    )
    deadline = t0 + args.timeout_min * 60
    state = backfill_state(gql, backfill_id)
    while state["status"] not in TERMINAL and time.monotonic() < deadline:
        procs.check_alive()
        time.sleep(1)
        state = backfill_state(gql, backfill_id)
    wall_s = time.monotonic() - t0
    runs = all_runs(gql)
    mine = [r for r in runs if {"key": "dagster/backfill", "value": backfill_id} in r["tags"]]

    result: dict[str, Any] = {
        "days": args.days,
        "integrations": args.integrations,
        "latency_ms": args.latency_ms,
        "dates": f"{start}..{end}",
        "assets": ["/".join(key) for key in asset_keys],
        "partitions": args.days * args.integrations,
        "dagster_num_partitions": state.get("numPartitions"),
        "backfill_status": state["status"] if state["status"] in TERMINAL else "TIMEOUT",
        "wall_s": round(wall_s, 2),
        **summarize(mine, len(runs) - len(mine), launched_at),
        "rows": row_counts(warehouse),
        "setup_s": round(setup_s, 1),
    }
    failed = [r["runId"] for r in mine if r["status"] == "FAILURE"]
    if failed:
        result["first_failures"] = [failure_reason(gql, run_id) for run_id in failed[:3]]
    if state.get("error"):
        result["backfill_error"] = state["error"]["message"][:500]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--integrations", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=0, help="sandbox latency per request")
    parser.add_argument("--timeout-min", type=float, default=30, help="give up on the backfill")
    args = parser.parse_args(argv)
    if args.days < 1 or args.integrations < 1 or args.latency_ms < 0:
        parser.error("--days and --integrations must be >= 1, --latency-ms >= 0")

    # SIGTERM unwinds like Ctrl-C so the finally below still stops everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    tmp = Path(tempfile.mkdtemp(prefix="backfill-bench-"))
    procs = Processes(dict(os.environ), tmp)
    status = 1
    try:
        result = run_scenario(args, tmp, procs)
        print(json.dumps(result), flush=True)
        status = 0 if result["backfill_status"] == "COMPLETED_SUCCESS" else 1
    except (Exception, KeyboardInterrupt) as exc:
        if not isinstance(exc, BenchError | KeyboardInterrupt):
            traceback.print_exc()
        print(f"backfill_daemon: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(procs.tails(), file=sys.stderr)
    finally:
        procs.stop_all()
        leftovers = leftover_pids(str(tmp))
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if leftovers:
            print(f"backfill_daemon: killed leftover pids {leftovers}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
