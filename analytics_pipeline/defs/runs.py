"""Running the content job in this process against the persistent Dagster instance.

Used by the CLI's `backfill` and the sandbox's `demo`: the runs land in $DAGSTER_HOME, so the UI
(`dg dev`) shows them afterwards exactly like runs launched from there.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from analytics_pipeline.defs.partitions import (
    INTEGRATIONS_PARTITIONS_NAME,
    contiguous_segments,
    range_run_tags,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def ensure_dagster_home() -> Path:
    """$DAGSTER_HOME, or ./.dagster_home; seeded with deploy/dagster.yaml (kept out of the
    project root: `dg dev` warns about a dagster.yaml in the current folder that is not
    $DAGSTER_HOME)."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    template = PROJECT_ROOT / "deploy" / "dagster.yaml"
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
        return [
            run_content_range(instance, start, end, segment)
            for segment in contiguous_segments(ordered, chosen)
        ]


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    success: bool
    partitions_materialized: int
    partitions_failed: list[str]
    api_calls: int
    seconds: float


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
    result = job.execute_in_process(
        # The run's events are in $DAGSTER_HOME (see them in the UI); keep the terminal quiet.
        run_config={"loggers": {"console": {"config": {"log_level": _console_log_level()}}}},
        instance=instance,
        tags=range_run_tags(start, end, integration_ids),
        raise_on_error=False,
    )
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    materialized, api_calls = 0, 0
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        materialized += 1
        metadata = materialization.metadata
        api_calls += _int(metadata.get("api_calls"))
    failed = _failed_partitions(result)
    return RunSummary(result.run_id, result.success, materialized, failed, api_calls, seconds)


def _console_log_level() -> str:
    """Dagster's console log of an in-process run: silent unless the caller turned on INFO
    logging for `analytics_pipeline` (`analytics-pipeline --verbose`). Failures are in the
    run's event log and in the caller's summary, not printed twice with stack traces."""
    verbose = logging.getLogger("analytics_pipeline").isEnabledFor(logging.INFO)
    return "WARNING" if verbose else "CRITICAL"


def _int(value: object) -> int:
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0


def _failed_partitions(result: dg.ExecuteInProcessResult) -> list[str]:
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.user_failure_data is not None:
            entry = event.step_failure_data.user_failure_data.metadata.get("failed_partitions")
            value = getattr(entry, "value", None)
            if isinstance(value, list):
                return [str(item) for item in value]
    return []
