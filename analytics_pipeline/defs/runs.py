"""Backfills from the CLI and the demo: runs of the content job launched through the instance.

The runs land in $DAGSTER_HOME like runs launched from the UI, and run in a code server's run
worker, not in the caller (see `launch.py`): a killed CLI leaves no run STARTED forever, and a
run whose worker dies is marked failed. The caller waits for its runs and gets one summary per
run; Ctrl-C or SIGTERM while waiting terminates the runs it launched.
"""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import dagster as dg

from analytics_pipeline.defs.dagster_home import ensure_dagster_home
from analytics_pipeline.defs.launch import Launch, RunLauncherLoop, daemon_is_running
from analytics_pipeline.defs.partitions import (
    INTEGRATIONS_PARTITIONS_NAME,
    SETTINGS,
    batch_run_tags,
    plan_run_batches,
)

__all__ = [
    "RunSummary",
    "ensure_dagster_home",
    "ensure_integration_partitions",
    "run_backfill",
]


def ensure_integration_partitions(
    instance: dg.DagsterInstance, integration_ids: Sequence[str]
) -> list[str]:
    """Adds missing partitions; returns every integration partition in added order."""
    existing = set(instance.get_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME))
    missing = [key for key in integration_ids if key not in existing]
    if missing:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, missing)
    return list(instance.get_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME))


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    success: bool
    partitions_materialized: int
    partitions_failed: list[str]
    api_calls: int
    seconds: float


def run_backfill(
    start: dt.date,
    end: dt.date,
    tracked: Sequence[str],
    chosen: Sequence[str],
    *,
    platform_of: Mapping[str, str] | None = None,
    via_queue: bool | None = None,
) -> list[RunSummary]:
    """Days start..end x the `chosen` integrations (of all `tracked` ones), in runs of at most
    ANALYTICS_MAX_INTEGRATIONS_PER_RUN integrations of one platform, each a contiguous block in
    partition order (a range run spans every integration between its ends).

    `via_queue`: None submits to the run queue when a daemon is running, else launches at once;
    True/False force one way (the demo launches at once: its sandbox settings live in this
    process's environment, which a daemon's code server does not see)."""
    home = ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        ordered = ensure_integration_partitions(instance, tracked)
        batches = plan_run_batches(
            ordered, chosen, platform_of or {}, SETTINGS.max_integrations_per_run
        )
        launches = [Launch(batch_run_tags(start, end, batch)) for batch in batches]
        queue = daemon_is_running(instance) if via_queue is None else via_queue
        with _sigterm_as_interrupt():
            RunLauncherLoop(instance, Path(home), via_queue=queue).run(launches)
        return [summarize(instance, launch) for launch in launches]


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM while waiting stops the runs like Ctrl-C does (not a silent exit)."""

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def summarize(instance: dg.DagsterInstance, launch: Launch) -> RunSummary:
    """What one run did, read back from the instance's event log."""
    record = instance.get_run_record_by_id(launch.run_id)
    success = record is not None and record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    materialized, api_calls = 0, 0
    for entry in _records(instance, launch.run_id, dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        if materialization is None:
            continue
        materialized += 1
        api_calls += _int(materialization.metadata.get("api_calls"))
    failed = _failed_partitions(instance, launch.run_id)
    if record is not None and record.start_time and record.end_time:
        seconds = record.end_time - record.start_time
    else:
        seconds = max(launch.finished - launch.started, 0.0)
    return RunSummary(launch.run_id, success, materialized, failed, api_calls, seconds)


def _records(
    instance: dg.DagsterInstance, run_id: str, of_type: dg.DagsterEventType
) -> Iterator[dg.EventLogRecord]:
    cursor = None
    while True:
        page = instance.get_records_for_run(run_id, cursor=cursor, of_type=of_type, limit=1000)
        yield from page.records
        if not page.has_more:
            return
        cursor = page.cursor


def _int(value: object) -> int:
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0


def _failed_partitions(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    for record in _records(instance, run_id, dg.DagsterEventType.STEP_FAILURE):
        event = record.event_log_entry.dagster_event
        failure = event.step_failure_data.user_failure_data if event is not None else None
        if failure is not None:
            value = getattr(failure.metadata.get("failed_partitions"), "value", None)
            if isinstance(value, list):
                return [str(item) for item in value]
    return []
