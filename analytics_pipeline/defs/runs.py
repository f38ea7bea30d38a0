"""Running the content job in this process against the persistent Dagster instance.

Used by the CLI's `backfill` and the sandbox's `demo`: the runs land in $DAGSTER_HOME, so the UI
(`dg dev`) shows them afterwards exactly like runs launched from there.

A run executes on a worker thread: Dagster then installs no signal handler of its own (it would
turn SIGTERM into a step retry), and the caller's main thread turns SIGTERM / Ctrl-C into
`stop.request_stop()`, which the step obeys within seconds; no further run is started after a
stop. `summarize_run` reads a finished run back from the instance, so what the CLI prints is
what the Dagster run recorded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from analytics_pipeline.defs.partitions import (
    INTEGRATIONS_PARTITIONS_NAME,
    RANGE_END_TAG,
    RANGE_START_TAG,
    content_partitions,
    contiguous_segments,
    range_run_tags,
)
from analytics_pipeline.stop import stop_requested

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def ensure_dagster_home() -> Path:
    """$DAGSTER_HOME, or ./.dagster_home seeded with the project's dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    template = PROJECT_ROOT / "dagster.yaml"
    if not (home / "dagster.yaml").exists() and template.exists():
        shutil.copyfile(template, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def ensure_integration_partitions(
    instance: dg.DagsterInstance, integration_ids: Sequence[str]
) -> list[str]:
    """Adds missing partitions; returns every integration partition in added order."""
    existing = set(instance.get_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME))
    missing = [key for key in integration_ids if key not in existing]
    if missing:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, missing)
    return list(instance.get_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME))


def run_backfill(
    start: dt.date, end: dt.date, tracked: Sequence[str], chosen: Sequence[str]
) -> list[RunSummary]:
    """Days start..end x the `chosen` integrations (of all `tracked` ones), in as few runs as a
    range run allows: one per contiguous block of chosen integrations in partition order."""
    with dg.DagsterInstance.get() as instance:
        ordered = ensure_integration_partitions(instance, tracked)
        summaries = []
        for segment in contiguous_segments(ordered, chosen):
            if stop_requested():  # stop means stop: no further run
                break
            summaries.append(run_content_range(instance, start, end, segment))
        return summaries


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
    integrations: tuple[str, ...] = ()  # the run's integrations


def run_content_range(
    instance: dg.DagsterInstance,
    start: dt.date,
    end: dt.date,
    integration_ids: Sequence[str],
) -> RunSummary:
    """One run of the content job over days start..end x the integrations (added order).

    Resources are built from the environment now, not when the definitions were imported, so a
    caller that points ANALYTICS_* at the sandbox first (the demo) gets the sandbox.
    """
    from analytics_pipeline.definitions import defs

    definitions = defs()  # resources read the environment now (the demo points it at a sandbox)
    job = definitions.resolve_job_def("ingestion_job")
    started = dt.datetime.now(dt.UTC)
    outcome: dict[str, object] = {}

    def execute() -> None:
        try:
            outcome["result"] = job.execute_in_process(
                # The run's events are in $DAGSTER_HOME (see them in the UI); keep the terminal
                # quiet.
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                instance=instance,
                tags=range_run_tags(start, end, integration_ids),
                raise_on_error=False,
            )
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=execute, name="analytics-run", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.2)  # short joins keep this (the main) thread answering signals
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    result = outcome["result"]
    assert isinstance(result, dg.ExecuteInProcessResult)
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    summary = summarize_run(instance, result.run_id, seconds)
    return dataclasses.replace(summary, integrations=tuple(integration_ids))


def summarize_run(instance: dg.DagsterInstance, run_id: str, seconds: float) -> RunSummary:
    """The run as its event log tells it: partitions materialized, partitions failed with their
    class (the step's last failure), and partitions of the run that did neither."""
    run = instance.get_run_by_id(run_id)
    materialized: set[str] = set()
    api_calls = 0
    for record in _records(instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.event_log_entry.asset_materialization
        if materialization is None:
            continue
        materialized.add(
            f"{materialization.asset_key.to_user_string()}:{materialization.partition}"
        )
        api_calls += _int(materialization.metadata.get("api_calls"))
    failure = _last_failure_metadata(instance, run_id)
    classes = {str(k): str(v) for k, v in _json(failure.get("failure_classes"), {}).items()}
    failed = sorted(set(_json(failure.get("failed_partitions"), [])) | set(classes))
    planned = _planned_partitions(instance, run) if run is not None else set()
    not_materialized = sorted(planned - materialized - set(failed))
    status = run.status.value if run is not None else "UNKNOWN"
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
        without_failure_row=sorted(str(p) for p in _json(failure.get("without_failure_row"), [])),
        stopped=bool(_json(failure.get("stopped"), False)),
    )


def _records(
    instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType
) -> list[dg.EventLogRecord]:
    records: list[dg.EventLogRecord] = []
    cursor = None
    while True:
        page = instance.get_records_for_run(run_id, cursor=cursor, of_type=event_type, limit=5000)
        records.extend(page.records)
        if not page.has_more:
            return records
        cursor = page.cursor


def _last_failure_metadata(instance: dg.DagsterInstance, run_id: str) -> dict[str, object]:
    """The metadata of the step's LAST failure (after its retries), {} when none carried any."""
    for record in reversed(_records(instance, run_id, dg.DagsterEventType.STEP_FAILURE)):
        event = record.event_log_entry.dagster_event
        data = event.step_failure_data if event is not None else None
        if data is not None and data.user_failure_data is not None:
            return dict(data.user_failure_data.metadata)
    return {}


def _planned_partitions(instance: dg.DagsterInstance, run: dg.DagsterRun) -> set[str]:
    """Every "asset:key" a range run of the content job covers."""
    first, last = run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)
    if not first or not last:
        return set()
    keys = content_partitions.get_partition_keys_in_range(
        dg.PartitionKeyRange(first, last), dynamic_partitions_store=instance
    )
    assets = run.asset_selection or set()
    return {f"{asset.to_user_string()}:{key}" for asset in assets for key in keys}


def _json(entry: object, default: Any) -> Any:
    value = getattr(entry, "value", entry)
    return default if value is None else value


def _int(value: object) -> int:
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
