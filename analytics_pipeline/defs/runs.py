"""Backfills from the CLI and the demo: runs of the content job launched through the instance.

The runs land in $DAGSTER_HOME like runs launched from the UI, and run in a code server's run
worker, not in the caller (see `launch.py`): a killed CLI leaves no run STARTED forever, and a
run whose worker dies is marked failed. The caller waits for its runs and gets one summary per
run, read back from the instance (so what the CLI prints is what the Dagster run recorded);
Ctrl-C or SIGTERM while waiting terminates the runs it launched, waits for them to end, and the
summaries say which partitions landed before the stop.
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.dagster_home import ensure_dagster_home
from analytics_pipeline.defs.kpi_automation import KPI_RUN_TAGS, kpi_job
from analytics_pipeline.defs.kpi_rollup_automation import rollup_run_requests
from analytics_pipeline.defs.launch import JOB_NAME, Launch, RunLauncherLoop, daemon_is_running
from analytics_pipeline.defs.partitions import (
    INTEGRATIONS_PARTITIONS_NAME,
    RANGE_END_TAG,
    RANGE_START_TAG,
    SETTINGS,
    batch_run_tags,
    plan_run_batches,
)
from analytics_pipeline.defs.settle import (
    json_value,
    last_failure_metadata,
    planned_partitions,
    run_records,
    settle_run,
    settled_materializations,
)

__all__ = [
    "Backfill",
    "RunSummary",
    "ensure_dagster_home",
    "ensure_integration_partitions",
    "run_backfill",
    "run_kpis",
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
    """A finished run as the Dagster instance recorded it. Partitions are "asset:key"."""

    run_id: str
    success: bool
    partitions_materialized: int
    partitions_failed: list[str]
    api_calls: int
    seconds: float
    status: str = ""  # the Dagster run status (SUCCESS, FAILURE, CANCELED)
    failure_classes: dict[str, str] = field(default_factory=dict)  # partition -> class
    not_materialized: list[str] = field(default_factory=list)  # neither landed nor failed
    without_failure_row: list[str] = field(default_factory=list)
    stopped: bool = False
    job: str = JOB_NAME


@dataclass(frozen=True)
class Backfill:
    """What a backfill did: one summary per run it started, the tags of the runs it did not
    start (it was stopped first), and the signal that stopped it, if any."""

    runs: list[RunSummary]
    not_started: list[str] = field(default_factory=list)  # "first key...last key" per run
    stopped_by: int | None = None


def run_backfill(
    start: dt.date,
    end: dt.date,
    tracked: Sequence[str],
    chosen: Sequence[str],
    *,
    platform_of: Mapping[str, str] | None = None,
    via_queue: bool | None = None,
) -> Backfill:
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
        stopped_by: int | None = None
        with _sigterm_as_interrupt() as received:
            try:
                RunLauncherLoop(instance, Path(home), via_queue=queue).run(launches)
            except KeyboardInterrupt:  # the loop terminated its runs and waited for them
                stopped_by = received[0] if received else signal.SIGINT
        started = [launch for launch in launches if launch.process is not None]
        engine = wh.make_engine(wh.default_warehouse_url())
        try:
            summaries = [summarize(instance, launch, engine) for launch in started]
        finally:
            engine.dispose()
        return Backfill(
            summaries,
            not_started=[_range_of(launch.tags) for launch in launches if launch.process is None],
            stopped_by=stopped_by,
        )


def run_kpis(start: dt.date, end: dt.date) -> list[RunSummary]:
    """What the two KPI sensors request once ingestion lands, run now: `kpi_job` over days
    start..end, then the weekly and monthly rollups of the periods those days affect; each
    launched at once and waited for like `run_backfill(via_queue=False)`."""
    days = [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
    today = dt.datetime.now(dt.UTC).date()
    rollups = rollup_run_requests(days, 0, today, SETTINGS.partitions_start_date)
    launches = [_range_launch(kpi_job.name, start.isoformat(), end.isoformat())]
    for request in rollups:
        first = request.tags.get(RANGE_START_TAG, request.partition_key)
        last = request.tags.get(RANGE_END_TAG, request.partition_key)
        assert request.job_name is not None and first is not None and last is not None
        launches.append(_range_launch(request.job_name, first, last))
    return [_run_one(launch) for launch in launches]


def _range_launch(job_name: str, first: str, last: str) -> Launch:
    return Launch({**KPI_RUN_TAGS, RANGE_START_TAG: first, RANGE_END_TAG: last}, job=job_name)


def _run_one(launch: Launch) -> RunSummary:
    home = ensure_dagster_home()
    with dg.DagsterInstance.get() as instance, _sigterm_as_interrupt():
        RunLauncherLoop(instance, Path(home), via_queue=False).run([launch])
        record = instance.get_run_record_by_id(launch.run_id)
        materialized = run_records(
            instance, launch.run_id, dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        run = record.dagster_run if record is not None else None
        seconds = 0.0
        if record is not None and record.start_time and record.end_time:
            seconds = record.end_time - record.start_time
        return RunSummary(
            run_id=launch.run_id,
            success=run is not None and run.status == dg.DagsterRunStatus.SUCCESS,
            partitions_materialized=len(materialized),
            partitions_failed=[],
            api_calls=0,
            seconds=seconds,
            status=run.status.value if run is not None else "UNKNOWN",
            job=launch.job,
        )


@contextmanager
def _sigterm_as_interrupt() -> Iterator[list[int]]:
    """SIGTERM while waiting stops the runs like Ctrl-C does (not a silent exit). Yields the
    signals received (SIGINT arrives as Python's own KeyboardInterrupt)."""
    received: list[int] = []

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield received
        return
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, previous)


def _range_of(tags: Mapping[str, str]) -> str:
    return f"{tags.get(RANGE_START_TAG)}...{tags.get(RANGE_END_TAG)}"


def summarize(instance: dg.DagsterInstance, launch: Launch, engine: sa.Engine) -> RunSummary:
    """What one launched run did, read back from the instance's event log and the warehouse,
    once `settle.settle_run` completed the account of a run that ended without its own."""
    record = instance.get_run_record_by_id(launch.run_id)
    if record is not None and record.start_time and record.end_time:
        seconds = record.end_time - record.start_time
    else:
        seconds = max(launch.finished - launch.started, 0.0)
    try:
        settle_run(instance, engine, launch.run_id)
        with engine.connect() as conn:
            ledger: wh.RunLedger | None = wh.run_ledger(conn, launch.run_id)
    except sa.exc.SQLAlchemyError as exc:  # the warehouse is away: the run's own account
        print(
            f"run {launch.run_id}: the warehouse could not be read ({type(exc).__name__}); "
            "the summary is the Dagster run's alone.",
            file=sys.stderr,
        )
        ledger = None
    return summarize_run(instance, launch.run_id, seconds, ledger)


def summarize_run(
    instance: dg.DagsterInstance,
    run_id: str,
    seconds: float,
    ledger: wh.RunLedger | None = None,
) -> RunSummary:
    """The run as its event log tells it: partitions materialized, partitions failed with their
    class (the step's last failure), and partitions of the run that did neither. With the
    warehouse's `ledger` of the run, also what `settle_run` recorded for it after it ended
    (materializations of partitions it committed, the failure rows of the rest)."""
    run = instance.get_run_by_id(run_id)
    materialized: set[str] = set()
    api_calls = 0
    for record in run_records(instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.event_log_entry.asset_materialization
        if materialization is None:
            continue
        materialized.add(
            f"{materialization.asset_key.to_user_string()}:{materialization.partition}"
        )
        api_calls += _int(materialization.metadata.get("api_calls"))
    failure = last_failure_metadata(instance, run_id)
    classes = {str(k): str(v) for k, v in json_value(failure.get("failure_classes"), {}).items()}
    if ledger is not None:
        materialized |= settled_materializations(instance, run_id, set(ledger.loads) - materialized)
        for label, error_class in ledger.failures.items():
            classes.setdefault(label, error_class)
    failed = sorted(set(json_value(failure.get("failed_partitions"), [])) | set(classes))
    planned = planned_partitions(instance, run) if run is not None else set()
    not_materialized = sorted(planned - materialized - set(failed))
    status = run.status.value if run is not None else "UNKNOWN"
    recorded = set(ledger.failures) if ledger is not None else set()
    without_row = {str(p) for p in json_value(failure.get("without_failure_row"), [])} - recorded
    return RunSummary(
        run_id=run_id,
        success=run is not None and run.status == dg.DagsterRunStatus.SUCCESS,
        partitions_materialized=len(materialized),
        partitions_failed=failed,
        api_calls=api_calls,
        seconds=seconds,
        status=status,
        failure_classes=classes,
        not_materialized=not_materialized,
        without_failure_row=sorted(without_row),
        # A Terminate that reaches a run worker between two of the step's events ends the run
        # CANCELED without the step's own account (settle_run completes it).
        stopped=bool(json_value(failure.get("stopped"), False)) or status == "CANCELED",
    )


def _int(value: object) -> int:
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
