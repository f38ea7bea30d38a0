"""Launching runs of `ingestion_job` (and of `kpi_job`, for the demo) through the Dagster
instance, the way the UI does.

Each run is created and submitted by `dagster job launch` (Dagster's own CLI) against the
project's code location (workspace.yaml, else the module `analytics_pipeline.definitions`):

- A daemon is heartbeating: the run goes to the run queue, so the queue's limits (at most N
  runs, at most M per platform tag) apply, and the daemon's code location runs it.
- No daemon: the run is launched at once by the instance's run launcher (the same storage, a
  `DefaultRunCoordinator`; see `direct_launch_home`). The CLI applies the queue's limits itself
  by launching at most that many runs at a time.

Either way the run executes in a run worker process of a code server, not in the caller: if the
worker dies, the code server marks the run failed, and the daemon's run monitoring fails runs
that never start, never finish cancelling or run past their maximum runtime (dagster.yaml).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import dagster as dg
import yaml

from analytics_pipeline.defs.dagster_home import PROJECT_ROOT

JOB_NAME = "ingestion_job"
DEFINITIONS_MODULE = "analytics_pipeline.definitions"
DIRECT_HOME = ".direct-launch"
LAUNCH_LOGS = "launch-logs"
QUEUE_DAEMON = "QUEUED_RUN_COORDINATOR"
HEARTBEAT_FRESH_S = 90.0
POLL_S = 0.5
DEFAULT_MAX_CONCURRENT = 4
QUEUED_LAUNCHERS = 4  # `dagster job launch` processes at once when they only enqueue


def daemon_is_running(instance: dg.DagsterInstance) -> bool:
    """True when the daemon that dequeues runs has sent a heartbeat recently."""
    beat = instance.get_daemon_heartbeats().get(QUEUE_DAEMON)
    return beat is not None and time.time() - beat.timestamp < HEARTBEAT_FRESH_S


def direct_launch_home(home: Path) -> Path:
    """A config-only Dagster home that shares `home`'s storage but launches runs at once.

    `dagster job launch` submits through the instance's run coordinator; the default one
    queues runs for a daemon. This home's dagster.yaml is `home`'s with its queue replaced by a
    `DefaultRunCoordinator` and every storage spelled out at `home`'s locations (what Dagster
    uses when dagster.yaml leaves them out), so runs land where the UI and daemon see them."""
    config = yaml.safe_load((home / "dagster.yaml").read_text()) or {}
    config.pop("run_queue", None)
    config["run_coordinator"] = {
        "module": "dagster._core.run_coordinator",
        "class": "DefaultRunCoordinator",
    }
    legacy = {"run_storage", "event_log_storage", "schedule_storage"}
    if "storage" not in config and not legacy & config.keys():
        config["storage"] = {"sqlite": {"base_dir": str(home)}}
    config.setdefault(
        "local_artifact_storage",
        {
            "module": "dagster._core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": str(home)},
        },
    )
    config.setdefault(
        "compute_logs",
        {
            "module": "dagster._core.storage.local_compute_log_manager",
            "class": "LocalComputeLogManager",
            "config": {"base_dir": str(home / "storage")},
        },
    )
    direct = home / DIRECT_HOME
    direct.mkdir(exist_ok=True)
    staged = direct / "dagster.yaml.tmp"
    staged.write_text(yaml.safe_dump(config, sort_keys=False))
    staged.replace(direct / "dagster.yaml")
    return direct


def launch_command(run_id: str, tags: Mapping[str, str], job: str = JOB_NAME) -> list[str]:
    """`dagster job launch` for one run of `job` with `tags` and a run id chosen here."""
    workspace = PROJECT_ROOT / "workspace.yaml"
    target = ["-w", str(workspace)] if workspace.exists() else ["-m", DEFINITIONS_MODULE]
    dagster = Path(sys.executable).with_name("dagster")
    exe = str(dagster) if dagster.exists() else (shutil.which("dagster") or "dagster")
    tag_json = json.dumps(dict(tags))
    return [exe, "job", "launch", *target, "-j", job, "--run-id", run_id, "--tags", tag_json]


@dataclass
class Launch:
    """One planned run: its tags (and job), then the process that submits it and its log."""

    tags: dict[str, str]
    job: str = JOB_NAME
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    process: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None
    log_path: Path | None = None
    launch_error: str | None = None
    started: float = 0.0
    finished: float = 0.0


@dataclass
class QueueLimits:
    """The run queue's limits as the CLI applies them when it launches runs itself."""

    max_concurrent: int = DEFAULT_MAX_CONCURRENT
    tag_limits: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, instance: dg.DagsterInstance) -> QueueLimits:
        get_config = getattr(instance.run_coordinator, "get_run_queue_config", None)
        if get_config is None:
            return cls()
        config = get_config()
        limits = [dict(limit) for limit in config.tag_concurrency_limits or []]
        most = config.max_concurrent_runs
        return cls(most if most and most > 0 else DEFAULT_MAX_CONCURRENT, limits)

    def allows(self, tags: Mapping[str, str], active: Sequence[Mapping[str, str]]) -> bool:
        if len(active) >= self.max_concurrent:
            return False
        return all(self._within(limit, tags, active) for limit in self.tag_limits)

    @staticmethod
    def _within(
        limit: Mapping[str, Any], tags: Mapping[str, str], active: Sequence[Mapping[str, str]]
    ) -> bool:
        key, value = limit["key"], limit.get("value")
        if key not in tags:
            return True
        if isinstance(value, str) and tags[key] != value:
            return True
        same = [t for t in active if key in t]
        if isinstance(value, dict) and value.get("applyLimitPerUniqueValue"):
            same = [t for t in same if t[key] == tags[key]]
        elif isinstance(value, str):
            same = [t for t in same if t[key] == value]
        return len(same) < int(limit["limit"])


class RunLauncherLoop:
    """Submits planned runs within the limits, waits for every one to finish, and on an
    interrupt (Ctrl-C, SIGTERM) terminates the runs it launched instead of orphaning them."""

    def __init__(self, instance: dg.DagsterInstance, home: Path, *, via_queue: bool) -> None:
        self.instance, self.home, self.via_queue = instance, home, via_queue
        self.limits = QueueLimits.of(instance)
        self.env = dict(os.environ)
        if not via_queue:
            self.env["DAGSTER_HOME"] = str(direct_launch_home(home))
        (home / LAUNCH_LOGS).mkdir(exist_ok=True)

    def run(self, launches: Sequence[Launch]) -> None:
        pending, active = list(launches), list[Launch]()
        try:
            while pending or active:
                active = [launch for launch in active if not self._done(launch)]
                while pending and self._may_start(pending[0], active):
                    active.append(self._start(pending.pop(0)))
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            self.stop([launch for launch in launches if launch.process is not None])
            raise
        finally:
            for launch in launches:
                if launch.log is not None:
                    launch.log.close()
        self.wait_for_runs(launches)

    def _may_start(self, launch: Launch, active: Sequence[Launch]) -> bool:
        if self.via_queue:  # the daemon applies the queue's limits; only pace the submitters
            return len(active) < QUEUED_LAUNCHERS
        return self.limits.allows(launch.tags, [a.tags for a in active])

    def _start(self, launch: Launch) -> Launch:
        launch.log_path = self.home / LAUNCH_LOGS / f"{launch.run_id}.log"
        launch.log = launch.log_path.open("wb")
        launch.started = time.monotonic()
        launch.process = subprocess.Popen(  # noqa: S603 (our own argv: dagster job launch)
            launch_command(launch.run_id, launch.tags, launch.job),
            env=self.env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=launch.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the CLI is handled here, not by the launcher
        )
        return launch

    def _done(self, launch: Launch) -> bool:
        """Queue mode: done once submitted. Direct mode: done once the run finished."""
        assert launch.process is not None
        exited = launch.process.poll() is not None
        run = self.instance.get_run_by_id(launch.run_id)
        if exited and launch.process.returncode != 0 and (run is None or not run.is_finished):
            self._fail_launch(launch, run)
        finished = run is not None and run.is_finished
        if finished or launch.launch_error:
            launch.finished = launch.finished or time.monotonic()
        if self.via_queue:
            return exited
        return exited and (finished or launch.launch_error is not None)

    def _fail_launch(self, launch: Launch, run: dg.DagsterRun | None) -> None:
        launch.launch_error = last_error_line(launch.log_path)
        print(
            f"run {launch.run_id}: launch failed: {launch.launch_error} (log: {launch.log_path})",
            file=sys.stderr,
        )
        if run is not None:
            self.instance.report_run_failed(run, f"Launch failed: {launch.launch_error}")

    def wait_for_runs(self, launches: Sequence[Launch]) -> None:
        """Queue mode: the runs were submitted; wait until every one of them finished."""
        try:
            while True:
                open_runs = [launch for launch in launches if not self._finished(launch)]
                if not open_runs:
                    return
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            self.stop(launches)
            raise

    def _finished(self, launch: Launch) -> bool:
        if launch.launch_error is not None:
            return True
        run = self.instance.get_run_by_id(launch.run_id)
        if run is not None and run.is_finished:
            launch.finished = launch.finished or time.monotonic()
            return True
        return False

    def stop(self, launches: Sequence[Launch], grace_s: float = 60.0) -> None:
        """Cancel queued runs, terminate started ones; then wait for them to end."""
        for launch in launches:
            run = self.instance.get_run_by_id(launch.run_id)
            if run is not None and not run.is_finished:
                try:
                    self.instance.run_coordinator.cancel_run(launch.run_id)
                except Exception as exc:
                    print(f"Could not terminate run {launch.run_id}: {exc}", file=sys.stderr)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and not all(self._finished(lc) for lc in launches):
            time.sleep(POLL_S)
        for launch in launches:
            if launch.process is not None and launch.process.poll() is None:
                launch.process.terminate()


def last_error_line(log_path: Path | None) -> str:
    """The last non-empty line a failed `dagster job launch` wrote (its error)."""
    if log_path is None or not log_path.exists():
        return "dagster job launch failed"
    lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines()]
    meaningful = [line for line in lines if line and "dagster.code_server" not in line]
    return meaningful[-1][:300] if meaningful else "dagster job launch failed"
