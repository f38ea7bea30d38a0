"""Issue 10 item 7: the production shape, without Docker, asserting items 1-5.

Separate processes, as deployed (deploy/): `dagster code-server start` serving the definitions
(its run workers execute the runs), `dagster-daemon run` (through `benchmarks/fast_daemon.py`:
the backfill loop every 2 s instead of 30 s) and `dagster-webserver`, both on a workspace.yaml
pointing at the code server. Dagster's storage is deploy/dagster.postgres.yaml on a fresh
PostgreSQL database (the home initialized once, `analytics-pipeline init-dagster-home`); the
warehouse is another fresh database (`analytics-pipeline init-db`). The sandbox Graph API runs
in this process with latency and counts requests per page. Schedules and the sensors that
request runs are switched off through GraphQL first (they are on by default; nothing but the
backfills may run); the run-status sensors that settle ended runs stay on.

The scenario, one day, six Facebook pages, three backfills launched through GraphQL
(`launchPartitionBackfill`, a range over the integration dimension, tagged
`analytics/platform=facebook` like the project's own runs): one run each,
- T = {fb-0, fb-1}: terminated through GraphQL (`terminateRun`) once its first request is answered;
- K = {fb-2, fb-3}: its run worker and the step process it forked are killed with SIGKILL once
  its first request is answered, as a crashed machine would (the worker's pid from the code
  server's "Started process for run (pid: N)" event);
- F = {fb-4, fb-5}: fb-5 gets a transient server error on every request (a persistent fault).
A run fetches its integrations one after another (`ANALYTICS_MAX_CONCURRENCY=1`) at 3 s per
request, so a stop leaves requests unsent. The clean reference: the same three selections
materialized in this process, into a third database, against the same sandbox without latency
or fault, before the scenario (the sandbox's data of a day two days back does not change with
the hour; its clock is real so request times compare with Dagster's event times).

The module fixture plays the scenario once; each test asserts one item on what it recorded.
Bounds on time are hang guards, except the stop bound of item 1 (10 s + one request timeout,
with a margin for a loaded 2-core machine).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.assets import social_ingestion
from analytics_pipeline.defs.partitions import (
    INTEGRATIONS_PARTITIONS_NAME,
    PLATFORM_TAG,
    range_run_tags,
)
from analytics_pipeline.defs.resources import PlatformsResource, WarehouseResource
from analytics_pipeline.defs.settle import planned_partitions, settled_materializations
from analytics_pipeline.records import AssetName, ContentPartition
from analytics_pipeline.warehouse import tables
from analytics_pipeline.warehouse.migrations import migrate
from analytics_pipeline_tests.helpers import (
    ROOT,
    dagster_postgres_config,
    kill_process_tree,
    run_worker_pid,
    track_facebook_pages,
)
from analytics_sandbox import SandboxServer
from benchmarks import backfill_daemon as bd

pytestmark = pytest.mark.production_shape

TOKEN_ENV = "ANALYTICS_TEST_PROD_TOKEN"
TOKEN = "tok-SECRET-prod-71d2a9e0"
ORG = "org-prod"
PAGES = {f"fb-{n}": str(1000001 + n) for n in range(6)}
SELECTIONS = {"T": ("fb-0", "fb-1"), "K": ("fb-2", "fb-3"), "F": ("fb-4", "fb-5")}
FAULTY = "fb-5"
# Two days back: no lifetime snapshot is due for it at any hour (the cutoff is the next
# morning), so the reference and the scenario fetch the same things whatever the time.
DAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
LATENCY_MS = 3000
READ_TIMEOUT_S = 10
# Item 1: a stop ends the run within 10 s plus at most one in-flight request timeout; the margin
# is for the run worker's exit and the event writes on a loaded 2-core machine.
STOP_BOUND_S = 10 + READ_TIMEOUT_S + 15
# Requests in flight when the step takes the stop may finish; none may START later than this
# after it (its workers look at the stop before each request; well under one request's latency).
START_AFTER_STOP_S = 2.0
TERMINATION_RECEIVED = "received termination signal"  # the run worker's engine event
STOP_TAKEN = "Stop requested"  # the step's warning when it takes a stop (integration_run.py)
HANG_GUARD_S = 420
ACTIVE = {"STARTING", "STARTED", "CANCELING"}
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}
CLIENT_ENV = {
    "ANALYTICS_MAX_CONCURRENCY": "1",
    "ANALYTICS_HTTP_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
    "ANALYTICS_HTTP_MAX_ATTEMPTS": "2",
    "ANALYTICS_HTTP_BACKOFF_BASE_S": "0.001",
    "ANALYTICS_HTTP_BACKOFF_MAX_S": "0.01",
    "ANALYTICS_FACEBOOK_USAGE_MAX_PAUSE_S": "0.01",
    "ANALYTICS_STEP_RETRY_DELAY_S": "0",
}
# Columns that record when a row was written, not what the platform said.
WRITE_TIME_COLUMNS = {"first_seen_at", "updated_at", "observed_at", "followers_observed_at"}
COMPARED = {
    tables.content_items: AssetName.CONTENT_METADATA,
    tables.content_metrics_daily: AssetName.CONTENT_DAILY_METRICS,
    tables.account_metrics_daily: AssetName.ACCOUNT_DAILY_METRICS,
}

PARTITION_STATS_Q = """{ assetNodes { assetKey { path }
  partitionStats { numMaterialized numMaterializing numFailed } } }"""
TERMINATE_M = """mutation($runId: String!) { terminateRun(runId: $runId) { __typename
  ... on TerminateRunFailure { message } ... on PythonError { message } } }"""


def _partitions(integration_ids: tuple[str, ...]) -> set[str]:
    """The "asset:partition key" labels of every asset of the selection."""
    return {
        f"{asset.value}:{ContentPartition(DAY, iid).key}"
        for asset in AssetName
        for iid in integration_ids
    }


def _requests(sandbox: SandboxServer) -> dict[str, int]:
    return {iid: sandbox.request_count(page_id=page) for iid, page in PAGES.items()}


def _queue_limit() -> int:
    """The per-platform run limit deploy/dagster.postgres.yaml sets."""
    config = yaml.safe_load((ROOT / "deploy" / "dagster.postgres.yaml").read_text())
    (limit,) = [
        entry["limit"]
        for entry in config["run_queue"]["tag_concurrency_limits"]
        if entry["key"] == PLATFORM_TAG
    ]
    return int(limit)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class Played:
    """What the scenario recorded (everything the tests assert on)."""

    reference_requests: dict[str, int]
    requests: dict[str, int]
    requests_later: dict[str, int]
    requests_at: dict[str, dict[str, int]]  # "T acted", "T ended", "K acted", "K ended"
    request_starts: dict[str, list[float]]  # integration -> start times (epoch s) of its requests
    terminated_at: float  # epoch s when terminateRun returned
    first_run: dict[str, str]  # selection -> run id of its backfill's run
    runs: dict[str, dict[str, Any]]  # run id -> status, tags, step events, materializations
    seconds: dict[str, float]  # "stop": terminate -> CANCELED; "crash": SIGKILL -> FAILURE
    backfills: dict[str, str]  # id -> status at the end
    logs_scanned: list[str]  # the processes' log files (code server, daemon, webserver)
    logs_with_token: list[str]  # those that contain the token
    samples: list[dict[str, int]]  # facebook runs per status, every 0.5 s
    materialized: set[str]
    partition_stats: dict[str, dict[str, int]]
    failure_rows: list[dict[str, Any]]
    loads: dict[str, set[str]]  # run id -> "asset:key" its workers committed (partition_loads)
    rows: dict[str, tuple[list[str], list[str]]]  # table -> (scenario, reference)


def _run_facts(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[str, Any]:
    events: Counter[str] = Counter()
    materializations: list[str] = []
    termination: list[float] = []
    taken: list[float] = []
    token_seen = False
    for entry in instance.all_logs(run.run_id):
        token_seen = token_seen or TOKEN in repr(entry)
        if entry.dagster_event_type is not None:
            events[entry.dagster_event_type.value] += 1
        if TERMINATION_RECEIVED in (entry.message or ""):
            termination.append(entry.timestamp)
        if STOP_TAKEN in (entry.user_message or ""):
            taken.append(entry.timestamp)
        if entry.asset_materialization is not None:
            key = entry.asset_materialization.asset_key.to_user_string()
            materializations.append(f"{key}:{entry.asset_materialization.partition}")
    return {
        "status": run.status.value,
        "job": run.job_name,
        "tags": dict(run.tags),
        "parent": run.parent_run_id,
        "events": dict(events),
        "materializations": materializations,
        # committed by the run, materialized after it ended (defs/settle.py)
        "settled": sorted(
            settled_materializations(instance, run.run_id, planned_partitions(instance, run))
        ),
        "termination_received": min(termination, default=None),
        "stop_taken": min(taken, default=None),
        "token_seen": token_seen,
    }


class Sampler(threading.Thread):
    """Counts the facebook-tagged runs per status every 0.5 s (its own instance)."""

    def __init__(self, home: Path) -> None:
        super().__init__(daemon=True)
        self.home, self.done = home, threading.Event()
        self.samples: list[dict[str, int]] = []

    def run(self) -> None:
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            while not self.done.wait(0.5):
                runs = instance.get_runs(filters=dg.RunsFilter(tags={PLATFORM_TAG: "facebook"}))
                self.samples.append(dict(Counter(run.status.value for run in runs)))


def _reference(sandbox: SandboxServer, url: str, env: dict[str, str]) -> dict[str, int]:
    """The clean reference run of each selection, in process: requests per integration."""
    engine = wh.make_engine(url)
    migrate(engine)
    track_facebook_pages(engine, PAGES, TOKEN_ENV, ORG)
    engine.dispose()
    sandbox.reset()
    resources = {
        "warehouse": WarehouseResource(url=url),
        "platforms": PlatformsResource.from_env(env),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, list(PAGES))
        for integration_ids in SELECTIONS.values():
            result = dg.materialize(
                [social_ingestion],
                instance=instance,
                resources=resources,
                tags=range_run_tags(DAY, DAY, integration_ids),
            )
            assert result.success
    return _requests(sandbox)


def _backfill_params(integration_ids: tuple[str, ...]) -> dict:
    """What a script (or the API form of the UI) sends: a range per asset, with the tag the
    project's own runs carry so the run queue limits them per platform."""
    partitions = {
        "range": {
            "start": ContentPartition(DAY, integration_ids[0]).key,
            "end": ContentPartition(DAY, integration_ids[-1]).key,
        }
    }
    return {
        "title": f"production shape {'+'.join(integration_ids)}",
        "tags": [{"key": PLATFORM_TAG, "value": "facebook"}],
        "partitionsByAssets": [
            {"assetKey": {"path": [asset.value]}, "partitions": partitions} for asset in AssetName
        ],
    }


def _rows(engine: sa.Engine, materialized: set[str] | None) -> dict[str, list[str]]:
    """Rows of the compared tables (write-time columns left out) of the partitions that landed:
    content items of integrations whose metadata landed, metrics rows of (integration, day)
    whose partition landed. None: every row."""
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for table, asset in COMPARED.items():
            columns = [c for c in table.c if c.name not in WRITE_TIME_COLUMNS]
            rows = []
            for row in conn.execute(sa.select(*columns)).mappings():
                day = row.get("metric_date", DAY)
                key = f"{asset.value}:{ContentPartition(day, row['integration_id']).key}"
                if materialized is None or key in materialized:
                    rows.append(json.dumps(dict(row), default=str, sort_keys=True))
            out[table.name] = sorted(rows)
    return out


class Scenario:
    """The processes and the three backfills; `play()` returns what happened."""

    def __init__(self, tmp: Path, env: dict[str, str], sandbox: SandboxServer) -> None:
        self.tmp, self.env, self.sandbox = tmp, env, sandbox
        self.home = Path(env["DAGSTER_HOME"])
        self.procs = bd.Processes(env, tmp)
        self.gql = bd.GraphQL(0)

    def wait(self, what: str, probe: Callable[[], Any], timeout_s: float = HANG_GUARD_S) -> Any:
        return bd.wait_for(what, probe, timeout_s, self.procs)

    def start(self) -> None:
        bd.run_cli(self.env, "init-db")
        engine = wh.make_engine(self.env["ANALYTICS_WAREHOUSE_URL"])
        track_facebook_pages(engine, PAGES, TOKEN_ENV, ORG)
        engine.dispose()
        bd.run_cli(self.env, "init-dagster-home")
        with dg.DagsterInstance.from_config(str(self.home)) as instance:
            instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, list(PAGES))
        workspace = self.tmp / "workspace.yaml"
        workspace.write_text("\n".join(bd.start_code_server(self.procs, _free_port())) + "\n")
        target = ["-w", str(workspace)]
        self.gql = bd.start_webserver(self.procs, target, _free_port())
        self.wait("the code location", lambda: bd.location_served(self.gql))
        assert bd.stop_automation(self.gql), "no schedule or sensor to switch off?"
        bd.start_daemon(self.procs, target, interval_s=2)
        self.wait("healthy daemons", lambda: bd.daemons_healthy(self.gql))

    def play(self, reference: dict[str, int]) -> Played:
        sandbox = self.sandbox
        sandbox.reset()
        sandbox.faults.update(
            latency_ms=LATENCY_MS,
            transient_kind="server_error",
            transient_failures={PAGES[FAULTY]: 1_000_000},
        )
        sampler = Sampler(self.home)
        sampler.start()
        try:
            with dg.DagsterInstance.from_config(str(self.home)) as instance:
                backfills = {
                    name: bd.launch_backfill(self.gql, _backfill_params(ids))
                    for name, ids in SELECTIONS.items()
                }
                played = self._stop_and_kill(instance, backfills)
                self.wait("every run to end", lambda: self._all_finished(instance), HANG_GUARD_S)
                # The backfills end once the crashed run's automatic retry (a new run) ended.
                with contextlib.suppress(bd.BenchError):
                    self.wait("the backfills to end", lambda: self._backfills_done(instance), 180)
                played["backfills"] = {
                    b.backfill_id: b.status.value for b in instance.get_backfills()
                }
                played["requests"] = _requests(sandbox)
                time.sleep(3)  # anything still sending would show up now
                played["requests_later"] = _requests(sandbox)
                played["request_starts"] = {
                    iid: [
                        record.timestamp.timestamp() - record.latency_ms / 1000
                        for record in sandbox.requests(page_id=page)
                    ]
                    for iid, page in PAGES.items()
                }
                return self._record(instance, played, reference, sampler)
        finally:
            sampler.done.set()
            sampler.join(timeout=30)

    def _stop_and_kill(self, instance: dg.DagsterInstance, backfills: dict[str, str]) -> dict:
        """Terminate T and kill K's worker, each once its first request is answered (whichever
        the queue starts first), and time how long each run takes to end."""
        first_run: dict[str, str] = {}
        requests_at: dict[str, dict[str, int]] = {}
        acted: dict[str, float] = {}
        seconds: dict[str, float] = {}
        terminated_at = 0.0
        deadline = time.monotonic() + HANG_GUARD_S
        while len(seconds) < 2:
            assert time.monotonic() < deadline, f"scenario stuck: {first_run} {acted} {seconds}"
            self.procs.check_alive()
            for name in SELECTIONS:
                if name not in first_run:
                    runs = instance.get_runs(
                        filters=dg.RunsFilter(tags={"dagster/backfill": backfills[name]})
                    )
                    if runs:
                        first_run[name] = runs[-1].run_id
            for name in ("T", "K"):
                if name in acted or name not in first_run:
                    continue
                pages = [PAGES[iid] for iid in SELECTIONS[name]]
                if not any(self.sandbox.request_count(page_id=page) for page in pages):
                    continue
                run = instance.get_run_by_id(first_run[name])
                assert run is not None and run.status.value not in FINISHED, (
                    f"{name} ended before it could be stopped: the scenario missed its window"
                )
                acted[name] = self._act(instance, name, first_run[name])
                requests_at[f"{name} acted"] = _requests(self.sandbox)
                terminated_at = terminated_at or (time.time() if name == "T" else 0.0)
            for name, label in (("T", "stop"), ("K", "crash")):
                if name in acted and label not in seconds:
                    run = instance.get_run_by_id(first_run[name])
                    if run is not None and run.status.value in FINISHED:
                        seconds[label] = time.monotonic() - acted[name]
                        requests_at[f"{name} ended"] = _requests(self.sandbox)
            time.sleep(0.2)
        return {
            "first_run": first_run,
            "requests_at": requests_at,
            "seconds": seconds,
            "terminated_at": terminated_at,
        }

    def _act(self, instance: dg.DagsterInstance, name: str, run_id: str) -> float:
        if name == "T":
            result = self.gql(TERMINATE_M, runId=run_id)["terminateRun"]
            assert result["__typename"] == "TerminateRunSuccess", result
            return time.monotonic()
        pid = self.wait("K's run worker", lambda: run_worker_pid(instance, run_id), 60)
        kill_process_tree(pid)
        return time.monotonic()

    @staticmethod
    def _all_finished(instance: dg.DagsterInstance) -> bool:
        statuses = {run.status.value for run in instance.get_runs()}
        return bool(statuses) and statuses <= FINISHED

    @classmethod
    def _backfills_done(cls, instance: dg.DagsterInstance) -> bool:
        backfills = instance.get_backfills()
        done = all(b.status.value in bd.TERMINAL for b in backfills)
        return done and cls._all_finished(instance)

    def _record(
        self,
        instance: dg.DagsterInstance,
        played: dict[str, Any],
        reference: dict[str, int],
        sampler: Sampler,
    ) -> Played:
        materialized = {
            f"{asset.value}:{key}"
            for asset in AssetName
            for key in instance.get_materialized_partitions(dg.AssetKey(asset.value))
        }
        stats = {
            "/".join(node["assetKey"]["path"]): node["partitionStats"]
            for node in self.gql(PARTITION_STATS_Q)["assetNodes"]
            if node["partitionStats"] is not None
        }
        engine = wh.make_engine(self.env["ANALYTICS_WAREHOUSE_URL"])
        reference_engine = wh.make_engine(self.env["REFERENCE_WAREHOUSE_URL"])
        try:
            with engine.connect() as conn:
                failure_rows = [
                    dict(row)
                    for row in conn.execute(sa.select(tables.ingestion_failures)).mappings()
                ]
                loads: dict[str, set[str]] = {}
                for load in conn.execute(sa.select(tables.partition_loads)).mappings():
                    key = ContentPartition(load["partition_date"], load["integration_id"]).key
                    loads.setdefault(load["run_id"], set()).add(f"{load['asset']}:{key}")
            ours, theirs = _rows(engine, materialized), _rows(reference_engine, materialized)
        finally:
            engine.dispose()
            reference_engine.dispose()
        return Played(
            **played,  # requests, their times, the runs acted on, seconds, backfills
            reference_requests=reference,
            runs={run.run_id: _run_facts(instance, run) for run in instance.get_runs()},
            logs_scanned=[log.name for log in self.tmp.glob("*.log")],
            logs_with_token=[
                log.name
                for log in self.tmp.glob("*.log")
                if TOKEN in log.read_text(errors="replace")
            ],
            samples=list(sampler.samples),
            materialized=materialized,
            partition_stats=stats,
            failure_rows=failure_rows,
            loads=loads,
            rows={name: (ours[name], theirs[name]) for name in ours},
        )


@pytest.fixture(scope="module")
def played(
    new_postgres_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Played]:
    tmp = tmp_path_factory.mktemp("production_shape")
    home = tmp / "dagster_home"
    home.mkdir()
    config, pg_env = dagster_postgres_config(new_postgres_database())
    (home / "dagster.yaml").write_text(config)
    with SandboxServer() as sandbox:
        env = {
            **os.environ,
            **pg_env,
            **CLIENT_ENV,
            "DAGSTER_HOME": str(home),
            "ANALYTICS_WAREHOUSE_URL": new_postgres_database(),
            "REFERENCE_WAREHOUSE_URL": new_postgres_database(),
            "ANALYTICS_FACEBOOK_BASE_URL": sandbox.base_url,
            TOKEN_ENV: TOKEN,
        }
        scenario = Scenario(tmp, env, sandbox)
        with pytest.MonkeyPatch.context() as patch:
            for name in (*pg_env, *CLIENT_ENV, "DAGSTER_HOME", TOKEN_ENV):
                patch.setenv(name, env[name])
            reference = _reference(sandbox, env["REFERENCE_WAREHOUSE_URL"], env)
            try:
                scenario.start()
                result = scenario.play(reference)
            except BaseException:
                print(scenario.procs.tails(60))
                raise
            finally:
                scenario.procs.stop_all()
                for pid in bd.leftover_pids(str(tmp)):
                    os.kill(pid, signal.SIGKILL)
    print(
        f"production shape: stop {result.seconds['stop']:.1f} s after terminateRun; crashed run "
        f"FAILURE {result.seconds['crash']:.1f} s after SIGKILL; requests {result.requests} "
        f"(reference {result.reference_requests})"
    )
    # Everything the tests assert on, for a failure's post-mortem (kept with pytest's temp dirs).
    (tmp / "played.json").write_text(json.dumps(dataclasses.asdict(result), default=str, indent=1))
    yield result


def _run_of(played: Played, name: str) -> dict[str, Any]:
    return played.runs[played.first_run[name]]


def test_item1_a_terminated_run_ends_canceled_within_the_stop_bound(played: Played) -> None:
    assert _run_of(played, "T")["status"] == "CANCELED"
    assert played.seconds["stop"] < STOP_BOUND_S, played.seconds  # see STOP_BOUND_S


def test_item1_a_terminated_run_sends_no_request_after_the_stop_and_is_not_retried(
    played: Played,
) -> None:
    run = _run_of(played, "T")
    # When the step took the stop; else when it reached the run worker; else when it was sent.
    stop = run["stop_taken"] or run["termination_received"] or played.terminated_at
    late = {
        iid: [round(start - stop, 1) for start in played.request_starts[iid]]
        for iid in SELECTIONS["T"]
    }
    assert all(start < START_AFTER_STOP_S for starts in late.values() for start in starts), late
    ended, final = played.requests_at["T ended"], played.requests_later
    assert [final[iid] for iid in SELECTIONS["T"]] == [ended[iid] for iid in SELECTIONS["T"]]
    # The stop cut the run short: fewer requests than its clean reference made.
    sent = sum(final[iid] for iid in SELECTIONS["T"])
    assert sent < sum(played.reference_requests[iid] for iid in SELECTIONS["T"]), final
    # One attempt of the step, no step retry, and no run re-executes it.
    assert run["events"].get("STEP_START") == 1
    assert "STEP_UP_FOR_RETRY" not in run["events"]
    assert not [r for r in played.runs.values() if r["parent"] == played.first_run["T"]]


def test_item1_partitions_a_terminated_run_did_not_land_are_stopped_failures(
    played: Played,
) -> None:
    run_id = played.first_run["T"]
    not_landed = _partitions(SELECTIONS["T"]) - played.materialized
    assert not_landed, "the stop came too late to prove anything"
    rows = {
        f"{row['asset']}:{row['partition_key']}": row
        for row in played.failure_rows
        if row["run_id"] == run_id
    }
    assert set(rows) == not_landed
    assert {row["error_class"] for row in rows.values()} == {"stopped"}
    # Every partition the run committed is materialized (none landed in the warehouse alone).
    assert played.loads.get(run_id), "the stop came before anything landed"
    assert played.loads[run_id] <= played.materialized


def test_item2_a_healthy_integration_gets_one_round_despite_the_faulty_ones_retries(
    played: Played,
) -> None:
    run = _run_of(played, "F")
    assert run["status"] == "FAILURE"
    assert run["events"].get("STEP_UP_FOR_RETRY", 0) >= 1  # the faulty one was retried
    assert played.requests[FAULTY] > played.reference_requests[FAULTY]
    (healthy,) = [iid for iid in SELECTIONS["F"] if iid != FAULTY]
    assert played.requests[healthy] == played.reference_requests[healthy] > 0
    assert not played.requests_later[healthy] - played.requests[healthy]


def test_item3_a_killed_run_fails_within_minutes_and_nothing_stays_in_progress(
    played: Played,
) -> None:
    assert _run_of(played, "K")["status"] == "FAILURE"
    assert played.seconds["crash"] < HANG_GUARD_S  # printed above: the figure for the README
    assert all(run["status"] in FINISHED for run in played.runs.values())
    assert played.partition_stats and all(
        stats["numMaterializing"] == 0 for stats in played.partition_stats.values()
    ), played.partition_stats


def test_item3_the_crashed_run_is_retried_once_and_the_retry_redoes_only_what_failed(
    played: Played,
) -> None:
    """run_retries (dagster.yaml) re-executes the crashed run once, from failure: every
    partition of K materialized exactly once over both runs (a partition the crashed run
    committed in its last instant is materialized by the settlement, and the retry skips it),
    and its backfill completes."""
    (retry,) = [r for r in played.runs.values() if r["parent"] == played.first_run["K"]]
    assert retry["status"] == "SUCCESS"
    crashed = _run_of(played, "K")
    done = crashed["materializations"] + crashed["settled"] + retry["materializations"]
    assert Counter(done) == Counter(_partitions(SELECTIONS["K"]))
    assert all(status in bd.TERMINAL for status in played.backfills.values()), played.backfills


def test_item4_every_partition_that_did_not_land_has_a_failure_row_with_class_and_run(
    played: Played,
) -> None:
    faulty = _partitions((FAULTY,))
    f_run = played.first_run["F"]
    rows = {
        f"{row['asset']}:{row['partition_key']}": row
        for row in played.failure_rows
        if row["run_id"] == f_run
    }
    assert set(rows) == faulty and not faulty & played.materialized
    assert {row["error_class"] for row in rows.values()} == {"transient"}
    # Outside T (its rows are the previous test's), every selected partition either landed or
    # has a row naming its class and one of our runs.
    selected = set().union(*(_partitions(ids) for name, ids in SELECTIONS.items() if name != "T"))
    with_row = {
        f"{row['asset']}:{row['partition_key']}"
        for row in played.failure_rows
        if row["run_id"] in played.runs and row["error_class"]
    }
    assert selected - played.materialized <= with_row


def test_item4_partitions_a_crashed_run_did_not_land_have_rows_with_its_run_id(
    played: Played,
) -> None:
    """The killed run cannot write its own rows; its account is settled after it ended (the
    retry then lands the partitions, which does not erase that this run failed them)."""
    run_id = played.first_run["K"]
    landed = played.loads.get(run_id, set())
    rows = {
        f"{row['asset']}:{row['partition_key']}": row["error_class"]
        for row in played.failure_rows
        if row["run_id"] == run_id
    }
    assert _partitions(SELECTIONS["K"]) - landed, "the kill came after everything landed"
    assert set(rows) == _partitions(SELECTIONS["K"]) - landed, _run_of(played, "K")["job"]
    assert set(rows.values()) <= {"stopped"}


def test_item5_at_most_the_platform_limit_of_runs_is_in_progress_at_once(played: Played) -> None:
    limit = _queue_limit()
    tagged = [r for r in played.runs.values() if r["tags"].get(PLATFORM_TAG) == "facebook"]
    assert len(tagged) >= len(SELECTIONS)
    active = [
        sum(n for status, n in sample.items() if status in ACTIVE) for sample in played.samples
    ]
    assert max(active) == limit, active
    # The limit held a run back: a facebook run waited in the queue while `limit` ran.
    assert any(
        sample.get("QUEUED", 0) and n == limit
        for sample, n in zip(played.samples, active, strict=True)
    )


def test_rows_of_partitions_that_landed_equal_the_clean_reference_runs(played: Played) -> None:
    landed_elsewhere = _partitions(SELECTIONS["K"]) | _partitions(("fb-4",))
    assert landed_elsewhere <= played.materialized
    for table, (ours, reference) in played.rows.items():
        assert ours == reference, table
    assert played.rows["content_items"][1] and played.rows["account_metrics_daily"][1]


def test_the_token_is_in_no_event_log_row_or_process_log(played: Played) -> None:
    assert not [run_id for run_id, run in played.runs.items() if run["token_seen"]]
    assert TOKEN not in json.dumps(played.failure_rows, default=str)
    assert not played.logs_with_token
    assert {"code-server.log", "daemon.log", "webserver.log"} <= set(played.logs_scanned)
