"""Backfills through the daemon, launched in each form the UI sends: exactly what was selected?

Each invocation builds a throwaway world (DAGSTER_HOME with a copy of deploy/dagster.yaml, a
SQLite warehouse, the sandbox Graph API on 127.0.0.1), tracks N sandbox Facebook pages, starts
`dagster-daemon run` and `dagster-webserver` (separate processes, as in production), launches an
asset backfill of every asset of `ingestion_job` over the last D complete UTC days x the selected
integrations with the GraphQL `launchPartitionBackfill` mutation, in the form given by `--form`,
waits for it, and prints one JSON line per form: runs, wall time, and per asset the partitions
materialized by the backfill's runs against the selection (outside it, missing, twice), Dagster's
own target, and the staleness the UI shows. Everything is torn down (process groups, temp dir),
also on failure or Ctrl-C.

The forms (what Dagster 1.13.27's UI sends, read from its bundled JavaScript):
- `range`: `partitionsByAssets: [{assetKey, partitions: {range: {start, end}}}]` per asset
  (`ranges` when the selected integrations are not contiguous): the GraphQL API's form; the UI
  does not send it;
- `keys`: `assetSelection` + `partitionNames` (the cross product of the chosen dates and
  integrations) + `fromFailure: false`: the *Materialize* dialog of the asset graph / catalog
  (its target is the hidden `__ASSET_JOB`, the first of the assets' sorted `jobNames`);
- `job-assets`: `selector: {partitionSetName: "ingestion_job_partition_set",
  repositorySelector}` + `assetSelection` + `partitionNames` + `fromFailure: false`: the same
  dialog opened from the job's page (*Materialize...* on the Partitions tab of an asset job), a
  JOB backfill whose range runs also carry one partition's per-dimension tags;
- `job`: `selector` + `partitionNames` + `fromFailure: false`: the op-job *Launch backfill*
  dialog (1.13.27 shows it only for op jobs; older UIs and scripts send it for asset jobs);
- `all`: `assetSelection` + `allPartitions: true`: the dialog's "all partitions" target. It
  selects every partition, so the first date partition of its world is the window's first day
  (`ANALYTICS_PARTITIONS_START_DATE`) unless `--partitions-start` says otherwise.
`fromFailure: true` is not covered: asset backfills reject it, and the UI offers it only in the
op-job dialog.

The integration partitions are added BEFORE the daemon starts, so `tracked_integrations_sensor`
finds nothing new and requests no initial lookback-window runs; `other_runs` in the output counts
runs not launched by any backfill (sensor or schedule) that shared the run queue.

    .venv/bin/python -m benchmarks.backfill_daemon --days 7 --integrations 3 [--form keys ...]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
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
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import requests

from analytics_pipeline.defs.partitions import (
    INTEGRATIONS_PARTITIONS_NAME,
    RANGE_END_TAG,
    RANGE_START_TAG,
    SETTINGS,
    contiguous_segments,
)
from analytics_pipeline.records import ContentPartition

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
JOB_NAME = "ingestion_job"
LOCATION_NAME = "analytics_pipeline"  # workspace.yaml at the root, deploy/workspace.yaml
PARTITION_SET_NAME = f"{JOB_NAME}_partition_set"
DEFS_MODULE = "analytics_pipeline.definitions"
TOKEN_ENV = "BENCH_FB_TOKEN"  # noqa: S105 (the variable's NAME)
TERMINAL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
TABLES = ("content_items", "content_metrics_daily", "account_metrics_daily")
BACKFILL_TAG = "dagster/backfill"
DIMENSION_TAG_PREFIX = "dagster/partition/"
EXAMPLES = 5  # partition keys listed per discrepancy

FORMS = {
    "range": "partitionsByAssets (range per asset)",
    "keys": "assetSelection + partitionNames (asset Materialize dialog)",
    "job-assets": "selector + assetSelection + partitionNames (Materialize on the job's page)",
    "job": "selector + partitionNames (op-job Launch backfill dialog)",
    "all": "assetSelection + allPartitions",
}

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


def start_code_server(procs: Processes, port: int) -> list[str]:
    """`dagster code-server start` serving the definitions (as deploy/Dockerfile runs it) on
    127.0.0.1:`port`; the lines of a workspace.yaml that point at it (deploy/workspace.yaml's
    shape, the location name of workspace.yaml at the root)."""
    argv = ["code-server", "start", "-h", "127.0.0.1", "-p", str(port), "-m", DEFS_MODULE]
    procs.start("code-server", str(BIN / "dagster"), *argv, "--location-name", LOCATION_NAME)
    return [
        "load_from:",
        "  - grpc_server:",
        "      host: 127.0.0.1",
        f"      port: {port}",
        f"      location_name: {LOCATION_NAME}",
    ]


def start_daemon(procs: Processes, target: Sequence[str], interval_s: int | None) -> None:
    """`dagster-daemon run` on `target` (`-m module` or `-w workspace.yaml`); with `interval_s`
    through `benchmarks/fast_daemon.py` (a shorter backfill loop: for tests, not figures)."""
    if interval_s is None:
        daemon = [str(BIN / "dagster-daemon")]
    else:
        daemon = [sys.executable, "-m", "benchmarks.fast_daemon", str(interval_s)]
    procs.start("daemon", *daemon, "run", *target)


def start_webserver(procs: Processes, target: Sequence[str], port: int) -> GraphQL:
    """`dagster-webserver` on `target` at 127.0.0.1:`port`; its GraphQL endpoint."""
    web = [*target, "-h", "127.0.0.1", "-p", str(port)]
    procs.start("webserver", str(BIN / "dagster-webserver"), *web)
    return GraphQL(port)


def stop_automation(gql: GraphQL) -> list[str]:
    """Stop every schedule and every sensor that requests runs (what the UI's toggles do; they
    are on by default): the names stopped. Run-status sensors stay on: they only react to runs
    that ended (settling their account)."""
    stopped = []
    for repository in gql(INSTIGATORS_Q)["repositoriesOrError"]["nodes"]:
        for kind, mutation in (("schedules", STOP_SCHEDULE_M), ("sensors", STOP_SENSOR_M)):
            for instigator in repository[kind]:
                if instigator.get("sensorType") == "RUN_STATUS":
                    continue
                result = next(iter(gql(mutation, id=instigator["id"]).values()))
                if result["__typename"] not in ("ScheduleStateResult", "StopSensorMutationResult"):
                    raise BenchError(f"stopping {instigator['name']}: {result}")
                stopped.append(instigator["name"])
    return stopped


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
        resp = HTTP.post(self.url, json={"query": query, "variables": variables}, timeout=120)
        resp.raise_for_status()
        payload = resp.json()
        if payload.get("errors"):
            raise BenchError(f"GraphQL errors: {payload['errors']}")
        return dict(payload["data"])


WORKSPACE_Q = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on RepositoryLocation { name repositories { name } }
  ... on PythonError { message } } } } } }"""

ASSET_NODES_Q = """query($sel: PipelineSelector!) { assetNodes(pipeline: $sel) {
  assetKey { path } jobNames } }"""

DAEMONS_Q = (
    """{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"""
)

LAUNCH_M = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""

BACKFILL_Q = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status numPartitions isAssetBackfill partitionSetName
    error { message }
    assetBackfillData { assetBackfillStatuses { __typename
      ... on AssetPartitionsStatusCounts { assetKey { path } numPartitionsTargeted } } } }
  ... on Error { message } } }"""

RUNS_Q = """query($filter: RunsFilter) { runsOrError(filter: $filter) { __typename
  ... on Runs { results { runId status startTime endTime tags { key value } } }
  ... on Error { message } } }"""

BACKFILL_RUNS_Q = """query($filter: RunsFilter) { runsOrError(filter: $filter) { __typename
  ... on Runs { results { runId status startTime endTime tags { key value }
    assetMaterializations { assetKey { path } partition } } }
  ... on Error { message } } }"""

# What the UI's "Unsynced (N)" badge reads (AssetStaleStatusDataQuery: staleStatus and
# staleCauses of the asset), plus the status of each partition of the selection.
STALE_Q = """query($keys: [AssetKeyInput!]!, $partitions: [String!]) {
  assetNodes(assetKeys: $keys) { assetKey { path } staleStatus
    staleCauses { key { path } partitionKey reason category }
    staleStatusByPartition(partitions: $partitions) } }"""

RELOAD_M = """mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) {
  __typename } }"""

INSTIGATORS_Q = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
  schedules { id name } sensors { id name sensorType } } } } }"""

STOP_SCHEDULE_M = """mutation($id: String!) { stopRunningSchedule(id: $id) { __typename } }"""

STOP_SENSOR_M = """mutation($id: String!) { stopSensor(id: $id) { __typename } }"""

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


def location_served(gql: GraphQL) -> tuple[str, str] | None:
    """`loaded_location` for a code server started alongside the webserver: a location the
    webserver could not reach yet is reloaded (the UI's Reload button) instead of failing."""
    try:
        return loaded_location(gql)
    except BenchError as exc:
        if "UNAVAILABLE" not in str(exc):
            raise
    gql(RELOAD_M, name=LOCATION_NAME)
    return None


def daemons_healthy(gql: GraphQL) -> bool:
    statuses = gql(DAEMONS_Q)["instance"]["daemonHealth"]["allDaemonStatuses"]
    return all(s["healthy"] for s in statuses if s["required"])


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


def runs_of(gql: GraphQL, query: str, tags: Sequence[dict[str, str]] = ()) -> list[dict[str, Any]]:
    result = gql(query, filter={"tags": list(tags)})["runsOrError"]
    if result["__typename"] != "Runs":
        raise BenchError(f"runsOrError: {result['__typename']}: {result.get('message')}")
    return list(result["results"])


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def scenario_dates(days: int, first_partition: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The last `days` complete UTC days."""
    end = utc_today() - dt.timedelta(days=1)
    start = end - dt.timedelta(days=days - 1)
    if start < (first_partition or SETTINGS.partitions_start_date):
        raise BenchError(f"{start} is before the first date partition; use fewer --days.")
    return start, end


@dataclasses.dataclass(frozen=True)
class Selection:
    """Consecutive days x some tracked integrations (in partition order)."""

    days: tuple[dt.date, ...]
    integrations: tuple[str, ...]

    @classmethod
    def of(cls, start: dt.date, end: dt.date, integrations: Sequence[str]) -> Selection:
        days = tuple(start + dt.timedelta(days=n) for n in range((end - start).days + 1))
        return cls(days, tuple(integrations))

    def keys(self) -> list[str]:
        """What the Materialize dialog sends: the cross product of the chosen keys."""
        return [ContentPartition(d, i).key for d in self.days for i in self.integrations]


class World:
    """A throwaway Dagster deployment: sandbox, SQLite warehouse, daemon and webserver.

    `daemon_interval_s` shortens the backfill daemon's loop (Dagster 1.13 sleeps a fixed 30 s,
    `dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS`, with no setting in dagster.yaml
    or the environment) through `benchmarks/fast_daemon.py`; None runs `dagster-daemon` as is.
    Use it as a context manager: everything it started is stopped and its temp dir deleted on
    exit, whatever happened; `leftovers` lists the processes that had to be killed by marker.
    """

    def __init__(
        self,
        integrations: int,
        *,
        partitions_start: dt.date | None = None,
        latency_ms: int = 0,
        daemon_interval_s: int | None = None,
    ) -> None:
        self.n_integrations, self.latency_ms = integrations, latency_ms
        self.partitions_start = partitions_start or SETTINGS.partitions_start_date
        self.start_overridden = partitions_start is not None
        self.daemon_interval_s = daemon_interval_s
        self.tmp = Path(tempfile.mkdtemp(prefix="backfill-bench-"))
        self.procs = Processes(dict(os.environ), self.tmp)
        self.integrations: list[str] = []
        self.ports: list[int] = []
        self.leftovers: list[int] = []
        self.setup_s = 0.0
        self.location = self.repository = ""
        self.asset_keys: list[list[str]] = []
        self.job_names: dict[str, list[str]] = {}
        self.home, self.warehouse = self.tmp / "dagster_home", self.tmp / "w.sqlite"
        self.gql = GraphQL(0)

    def __enter__(self) -> World:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _start(self) -> None:
        began = time.monotonic()
        self.home.mkdir()
        shutil.copyfile(ROOT / "deploy" / "dagster.yaml", self.home / "dagster.yaml")
        sandbox_port, web_port = free_port(), free_port()
        self.ports = [sandbox_port, web_port]
        env = self.procs.env  # every process started below gets these
        env.update(
            DAGSTER_HOME=str(self.home),
            ANALYTICS_WAREHOUSE_URL=f"sqlite:///{self.warehouse}",
            ANALYTICS_FACEBOOK_BASE_URL=f"http://127.0.0.1:{sandbox_port}",
            **{TOKEN_ENV: "bench-sandbox-token"},  # the sandbox accepts any token
        )
        if self.start_overridden:
            env["ANALYTICS_PARTITIONS_START_DATE"] = self.partitions_start.isoformat()

        sandbox_argv = [str(BIN / "analytics-sandbox"), "serve", "--port", str(sandbox_port)]
        self.procs.start("sandbox", *sandbox_argv)
        sandbox = f"http://127.0.0.1:{sandbox_port}/_sandbox"
        wait_for("the sandbox", lambda: HTTP.get(f"{sandbox}/health", timeout=5).ok, 60, self.procs)
        if self.latency_ms:
            faults = {"latency_ms": self.latency_ms}
            HTTP.post(f"{sandbox}/faults", json=faults, timeout=5).raise_for_status()

        run_cli(env, "init-db")
        self.integrations = [f"bench-fb-{n}" for n in range(self.n_integrations)]
        for n, integration_id in enumerate(self.integrations):
            account = ["--platform", "facebook", "--account", str(1000001 + n)]
            add = ["integrations", "add", "--org", "bench", "--id", integration_id, *account]
            run_cli(env, *add, "--token-env", TOKEN_ENV)
        # Added before the daemon starts, in this order (the order multi-partition ranges
        # follow): the sensor then sees no new integration and requests no initial runs.
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, self.integrations)

        start_daemon(self.procs, ["-m", DEFS_MODULE], self.daemon_interval_s)
        self.gql = start_webserver(self.procs, ["-m", DEFS_MODULE], web_port)

        location = wait_for("the code location", lambda: loaded_location(self.gql), 240, self.procs)
        self.location, self.repository = location
        wait_for("healthy daemons", lambda: daemons_healthy(self.gql), 240, self.procs)
        selector = {
            "repositoryLocationName": self.location,
            "repositoryName": self.repository,
            "pipelineName": JOB_NAME,
        }
        nodes = self.gql(ASSET_NODES_Q, sel=selector)["assetNodes"]
        if not nodes:
            raise BenchError(f"{JOB_NAME} selects no assets in {self.location}/{self.repository}")
        self.asset_keys = sorted(node["assetKey"]["path"] for node in nodes)
        self.job_names = {"/".join(n["assetKey"]["path"]): n["jobNames"] for n in nodes}
        self.setup_s = time.monotonic() - began

    def close(self) -> None:
        self.procs.stop_all()
        self.leftovers = leftover_pids(str(self.tmp))
        for pid in self.leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def repository_selector(self) -> dict[str, str]:
        return {"repositoryLocationName": self.location, "repositoryName": self.repository}

    def all_partition_keys(self) -> list[str]:
        """Every partition of the assets now: first date .. today (UTC) x every integration."""
        selection = Selection.of(self.partitions_start, utc_today(), self.integrations)
        return selection.keys()


def backfill_params(form: str, world: World, selection: Selection) -> dict[str, Any]:
    """The `LaunchBackfillParams` the UI (or the API form) sends for this selection."""
    asset_selection = [{"path": key} for key in world.asset_keys]
    job_selector = {
        "partitionSetName": PARTITION_SET_NAME,
        "repositorySelector": world.repository_selector(),
    }
    if form == "range":
        blocks = contiguous_segments(world.integrations, selection.integrations)
        first, last = selection.days[0], selection.days[-1]
        ranges = [
            {"start": ContentPartition(first, b[0]).key, "end": ContentPartition(last, b[-1]).key}
            for b in blocks
        ]
        partitions = {"range": ranges[0]} if len(ranges) == 1 else {"ranges": ranges}
        return {
            "title": f"bench {len(selection.days)}d x {len(selection.integrations)}",
            "partitionsByAssets": [
                {"assetKey": key, "partitions": partitions} for key in asset_selection
            ],
        }
    if form == "keys":
        return {
            "tags": [],
            "assetSelection": asset_selection,
            "partitionNames": selection.keys(),
            "fromFailure": False,
        }
    if form == "job-assets":
        return {
            "tags": [],
            "assetSelection": asset_selection,
            "partitionNames": selection.keys(),
            "fromFailure": False,
            "selector": job_selector,
        }
    if form == "job":
        return {
            "selector": job_selector,
            "partitionNames": selection.keys(),
            "fromFailure": False,
            "tags": [],
        }
    if form == "all":
        return {"tags": [], "assetSelection": asset_selection, "allPartitions": True}
    raise BenchError(f"Unknown form {form!r}; one of {', '.join(FORMS)}")


def shape(params: dict[str, Any]) -> dict[str, Any]:
    """The params with long lists replaced by their length (for the report)."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if name == "partitionNames":
            out[name] = f"<{len(value)} keys>"
        elif name == "partitionsByAssets":
            out[name] = f"<{len(value)} assets> {json.dumps(value[0]['partitions'])}"
        elif name == "assetSelection":
            out[name] = f"<{len(value)} assets>"
        else:
            out[name] = value
    return out


def launch(world: World, params: dict[str, Any]) -> str:
    return launch_backfill(world.gql, params)


def launch_backfill(gql: GraphQL, params: dict[str, Any]) -> str:
    """`launchPartitionBackfill` with `params`: the backfill's id."""
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


def wait_for_backfill(world: World, backfill_id: str, timeout_s: float) -> dict[str, Any]:
    """Polls the backfill every second until it is finished or timeout_s has passed."""
    deadline = time.monotonic() + timeout_s
    state = backfill_state(world.gql, backfill_id)
    while state["status"] not in TERMINAL and time.monotonic() < deadline:
        world.procs.check_alive()
        time.sleep(1)
        state = backfill_state(world.gql, backfill_id)
    return state


def summarize(mine: list[dict[str, Any]], other_runs: int, launched_at: float) -> dict[str, Any]:
    """Counts, statuses and durations of the backfill's runs."""
    durations = [r["endTime"] - r["startTime"] for r in mine if r["startTime"] and r["endTime"]]
    statuses = Counter(run["status"] for run in mine)
    starts = [r["startTime"] for r in mine if r["startTime"]]
    ends = [r["endTime"] for r in mine if r["endTime"]]
    return {
        "runs_launched": len(mine),
        "runs_succeeded": statuses.get("SUCCESS", 0),
        "runs_failed": statuses.get("FAILURE", 0),
        "run_statuses": dict(statuses),
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


def run_targets(mine: list[dict[str, Any]]) -> dict[str, Any]:
    """What each run was asked to do, from its tags: ranges, single keys, dimension tags."""
    targets, with_dimension_tags = [], 0
    for run in mine:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        if RANGE_START_TAG in tags:
            targets.append(f"{tags[RANGE_START_TAG]}..{tags[RANGE_END_TAG]}")
            with_dimension_tags += any(k.startswith(DIMENSION_TAG_PREFIX) for k in tags)
        else:
            targets.append(tags.get("dagster/partition", "<no partition>"))
    return {
        "run_targets": sorted(targets)[:25],
        "range_runs_with_dimension_tags": with_dimension_tags,
    }


def exactness(
    asset_keys: list[list[str]],
    expected: set[str],
    mine: list[dict[str, Any]],
    targeted: dict[str, int],
) -> dict[str, dict[str, Any]]:
    """Per asset: what the backfill's runs materialized against what was selected."""
    events: dict[str, Counter[str]] = {"/".join(key): Counter() for key in asset_keys}
    for run in mine:
        for event in run["assetMaterializations"]:
            asset = "/".join(event["assetKey"]["path"])
            events.setdefault(asset, Counter())[event["partition"] or "<unpartitioned>"] += 1
    report = {}
    for asset, counts in sorted(events.items()):
        outside = sorted(set(counts) - expected)
        missing = sorted(expected - set(counts))
        twice = sorted(key for key, n in counts.items() if n > 1)
        report[asset] = {
            "expected": len(expected),
            "materialized": len(counts),
            "materializations": sum(counts.values()),
            "outside": len(outside),
            "missing": len(missing),
            "more_than_once": len(twice),
            "dagster_targeted": targeted.get(asset),
            **({"outside_examples": outside[:EXAMPLES]} if outside else {}),
            **({"missing_examples": missing[:EXAMPLES]} if missing else {}),
        }
    return report


def staleness(world: World, partitions: list[str]) -> dict[str, dict[str, Any]]:
    """Per asset: the asset's stale status and causes (the UI's "Unsynced (N)" badge) and the
    stale status of each selected partition, counted."""
    keys = [{"path": key} for key in world.asset_keys]
    report = {}
    for node in world.gql(STALE_Q, keys=keys, partitions=partitions)["assetNodes"]:
        causes = node["staleCauses"] or []
        report["/".join(node["assetKey"]["path"])] = {
            "asset_status": node["staleStatus"],
            "unsynced_badge": len(causes),
            "causes": [f"{c['reason']} ({c['partitionKey']})" for c in causes[:EXAMPLES]],
            "partitions": dict(Counter(node["staleStatusByPartition"] or [])),
        }
    return report


def row_counts(warehouse: Path) -> dict[str, int | None]:
    counts: dict[str, int | None] = {}
    with sqlite3.connect(warehouse) as conn:
        for table in TABLES:
            try:
                counts[table] = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            except sqlite3.OperationalError:  # table not in this schema version
                counts[table] = None
    return counts


def run_backfill(
    world: World, form: str, selection: Selection, timeout_s: float, stale: bool = True
) -> dict[str, Any]:
    """Launch one backfill in `form`, wait for it, and report on it (one JSON-able dict)."""
    params = backfill_params(form, world, selection)
    expected = set(world.all_partition_keys() if form == "all" else selection.keys())
    launched_at, t0 = time.time(), time.monotonic()
    backfill_id = launch(world, params)
    state = wait_for_backfill(world, backfill_id, timeout_s)
    wall_s = time.monotonic() - t0

    mine = runs_of(world.gql, BACKFILL_RUNS_Q, [{"key": BACKFILL_TAG, "value": backfill_id}])
    others = [
        r
        for r in runs_of(world.gql, RUNS_Q)
        if not any(t["key"] == BACKFILL_TAG for t in r["tags"])
    ]
    statuses = (state.get("assetBackfillData") or {}).get("assetBackfillStatuses") or []
    targeted = {
        "/".join(s["assetKey"]["path"]): s["numPartitionsTargeted"]
        for s in statuses
        if s["__typename"] == "AssetPartitionsStatusCounts"
    }
    assets = exactness(world.asset_keys, expected, mine, targeted)
    result: dict[str, Any] = {
        "form": form,
        "sends": shape(params),
        "days": len(selection.days),
        "integrations": world.n_integrations,
        "selected_integrations": (
            len(world.integrations) if form == "all" else len(selection.integrations)
        ),
        "latency_ms": world.latency_ms,
        "dates": f"{selection.days[0]}..{selection.days[-1]}",
        "expected_per_asset": len(expected),
        "dagster_num_partitions": state.get("numPartitions"),
        "is_asset_backfill": state.get("isAssetBackfill"),
        "backfill_status": state["status"] if state["status"] in TERMINAL else "TIMEOUT",
        "exact": all(
            a["outside"] == 0 and a["missing"] == 0 and a["more_than_once"] == 0
            for a in assets.values()
        ),
        "wall_s": round(wall_s, 2),
        **summarize(mine, len(others), launched_at),
        **run_targets(mine),
        "assets": assets,
    }
    if stale:
        t_stale = time.monotonic()
        result["stale"] = staleness(world, sorted(expected))
        result["stale_query_s"] = round(time.monotonic() - t_stale, 2)
    result["rows"] = row_counts(world.warehouse)
    result["setup_s"] = round(world.setup_s, 1)
    result["daemon_interval_s"] = world.daemon_interval_s or 30
    failed = [r["runId"] for r in mine if r["status"] == "FAILURE"]
    if failed:
        result["first_failures"] = [failure_reason(world.gql, run_id) for run_id in failed[:3]]
    if state.get("error"):
        result["backfill_error"] = state["error"]["message"][:500]
    return result


def parse_indices(text: str | None, count: int) -> list[int]:
    if not text:
        return list(range(count))
    indices = sorted({int(part) for part in text.split(",") if part.strip()})
    if not indices or indices[0] < 0 or indices[-1] >= count:
        raise BenchError(f"--select {text!r}: indices must be in 0..{count - 1}")
    return indices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--integrations", type=int, default=3, help="pages tracked")
    parser.add_argument(
        "--select", help="indices of the integrations to backfill, e.g. 0,2 (default: all)"
    )
    parser.add_argument(
        "--form",
        action="append",
        choices=[*FORMS, "every"],
        help="how the backfill is launched (repeatable; default range; every = all forms)",
    )
    parser.add_argument(
        "--shared-world",
        action="store_true",
        help="run the forms one after another in ONE world (default: a fresh world each)",
    )
    parser.add_argument(
        "--partitions-start",
        type=dt.date.fromisoformat,
        help="first date partition of every world (default: the pipeline's, except the "
        "window's first day in a world that backfills --form all)",
    )
    parser.add_argument("--latency-ms", type=int, default=0, help="sandbox latency per request")
    parser.add_argument("--timeout-min", type=float, default=30, help="give up on a backfill")
    parser.add_argument(
        "--daemon-interval-s",
        type=int,
        help="backfill daemon loop (Dagster: 30 s, not configurable); for tests, not figures",
    )
    parser.add_argument("--no-stale", action="store_true", help="skip the staleness queries")
    args = parser.parse_args(argv)
    if args.days < 1 or args.integrations < 1 or args.latency_ms < 0:
        parser.error("--days and --integrations must be >= 1, --latency-ms >= 0")
    forms = args.form or ["range"]
    forms = list(FORMS) if "every" in forms else list(dict.fromkeys(forms))

    # SIGTERM unwinds like Ctrl-C so the finally blocks still stop everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    status = 0
    try:
        start, end = scenario_dates(args.days, args.partitions_start)
        indices = parse_indices(args.select, args.integrations)
        batches = [forms] if args.shared_world else [[form] for form in forms]
        for batch in batches:
            world = World(
                args.integrations,
                # Only a world that backfills `all` starts its partitions at the window (the
                # others keep the pipeline's start: the first days' lookback windows are
                # clamped to the first partition, which would list less).
                partitions_start=args.partitions_start or (start if "all" in batch else None),
                latency_ms=args.latency_ms,
                daemon_interval_s=args.daemon_interval_s,
            )
            try:
                with world:
                    chosen = [world.integrations[i] for i in indices]
                    for form in batch:
                        selection = Selection.of(start, end, chosen)
                        timeout_s = args.timeout_min * 60
                        result = run_backfill(world, form, selection, timeout_s, not args.no_stale)
                        print(json.dumps(result), flush=True)
                        ok = result["backfill_status"] == "COMPLETED_SUCCESS" and result["exact"]
                        status = status or (0 if ok else 1)
            except (Exception, KeyboardInterrupt):
                print(world.procs.tails(), file=sys.stderr)
                raise
            finally:
                if world.leftovers:
                    print(f"backfill_daemon: killed leftovers {world.leftovers}", file=sys.stderr)
    except (Exception, KeyboardInterrupt) as exc:
        if not isinstance(exc, BenchError | KeyboardInterrupt):
            traceback.print_exc()
        print(f"backfill_daemon: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
