"""The account of an ingestion run that ended without the step's own (issue 10, items 1 and 4).

The step accounts for a stop itself when Dagster's interrupt reaches it in its own code
(`integration_run.py`): committed partitions materialized, the others `stopped` rows. A
Terminate that reaches a run worker while Dagster records one of the step's events, and a run
whose process died, end the run without that account: partitions the step's worker threads
committed in its last moments have no materialization, partitions it never reached no failure
row. `settle_run` completes the account from the warehouse's ledger once the run has ended:

- a partition the run loaded (`partition_loads.run_id`) without a materialization gets one, a
  runless materialization whose metadata names the run (`settled_for_run`);
- a planned partition neither materialized nor failed (`ingestion_failures.run_id`) gets a
  `stopped` row with the run id (partitions of paused integrations are skipped, not failed).

It is idempotent and runs in two places: `analytics-pipeline backfill` once its runs ended,
before it summarizes them, and `settle_ended_ingestion_runs` (on by default) for the runs the
UI, the schedules and the daemon launched.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.assets import (
    ACCOUNT_DAILY_METRICS,
    CONTENT_DAILY_METRICS,
    CONTENT_METADATA,
)
from analytics_pipeline.defs.launch import JOB_NAME
from analytics_pipeline.defs.partitions import RANGE_END_TAG, RANGE_START_TAG, content_partitions
from analytics_pipeline.ingest import PartitionOutcome, record_failures, stopped_outcome
from analytics_pipeline.records import AssetName, ContentPartition, ErrorClass, IntegrationStatus
from analytics_pipeline.warehouse import slots

SETTLED_FOR_RUN = "settled_for_run"  # metadata of a materialization reported after its run
ENDED_WITHOUT_ACCOUNT = (dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.FAILURE)
WORKER_EXIT_WAIT_S = 30.0  # how long to wait for a stopped run's worker process to be gone
FAILURE_ROW_PATIENCE_S = 10.0
_STARTED_PROCESS = re.compile(r"Started process for run \(pid: (\d+)\)")
_PAGE = 5_000


@dataclass(frozen=True)
class Settlement:
    """What `settle_run` added, as "asset:key" labels."""

    run_id: str
    materialized: list[str]  # committed by the run, materialized now
    failed: list[str]  # `stopped` rows written now
    unrecorded: list[str]  # no row could be written (the warehouse could not be reached)


def settle_run(
    instance: dg.DagsterInstance,
    engine: sa.Engine,
    run_id: str,
    *,
    worker_exit_wait_s: float = WORKER_EXIT_WAIT_S,
) -> Settlement | None:
    """Complete the account of an ended (CANCELED or FAILURE) ingestion run; None for any
    other run. Waits first (bounded) for the run's worker process, when it is visible from
    here, to be gone: its threads may still be committing the partition they were writing."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.status not in ENDED_WITHOUT_ACCOUNT or not ingests(run):
        return None
    wait_for_run_worker(instance, run_id, worker_exit_wait_s)
    with engine.begin() as conn:  # its step is gone: its platform slots are free at once
        slots.release(conn, run_id)
    planned = planned_partitions(instance, run)
    with engine.connect() as conn:
        ledger = wh.run_ledger(conn, run_id)
        paused = {
            i.integration_id
            for i in wh.list_integrations(conn)
            if i.status == IntegrationStatus.PAUSED
        }
    in_run = run_materializations(instance, run_id)
    late = set(ledger.loads) - in_run
    late -= settled_materializations(instance, run_id, late)
    for label in sorted(late):
        instance.report_runless_asset_event(_materialization(label, ledger.loads[label], run_id))
    accounted = in_run | set(ledger.loads) | set(ledger.failures)
    missing = sorted(
        label for label in planned - accounted if _partition(label).integration_id not in paused
    )
    classes = json_value(last_failure_metadata(instance, run_id).get("failure_classes"), {})
    outcomes = [_not_reached(label, run.status, classes.get(label)) for label in missing]
    unrecorded = record_failures(engine, outcomes, run_id, patience_s=FAILURE_ROW_PATIENCE_S)
    unrecorded_labels = sorted(f"{o.asset}:{o.partition.key}" for o in unrecorded)
    return Settlement(
        run_id,
        sorted(late),
        [label for label in missing if label not in set(unrecorded_labels)],
        unrecorded_labels,
    )


INGESTION_ASSETS = frozenset({CONTENT_METADATA, CONTENT_DAILY_METRICS, ACCOUNT_DAILY_METRICS})


def ingests(run: dg.DagsterRun) -> bool:
    """A run of `ingestion_job`, or of the implicit asset job (a backfill or a materialization
    launched from the UI or GraphQL) that selected an ingestion asset."""
    if run.job_name == JOB_NAME:
        return True
    return bool(run.asset_selection and run.asset_selection & INGESTION_ASSETS)


def planned_partitions(instance: dg.DagsterInstance, run: dg.DagsterRun) -> set[str]:
    """Every "asset:key" an ingestion run covers (a range run, or one partition)."""
    first, last = run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)
    if first and last:
        keys = content_partitions.get_partition_keys_in_range(
            dg.PartitionKeyRange(first, last), dynamic_partitions_store=instance
        )
    elif run.tags.get("dagster/partition"):
        keys = [run.tags["dagster/partition"]]
    else:
        return set()
    # A run of the whole job (`dagster job launch`) has no selection: all three assets; a run
    # of asset checks alone plans no partition of them; a UI run may select other assets too.
    assets = run.asset_selection
    if assets is None:
        assets = frozenset() if run.asset_check_selection else INGESTION_ASSETS
    assets = assets & INGESTION_ASSETS
    return {f"{asset.to_user_string()}:{key}" for asset in assets for key in keys}


def run_records(
    instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType
) -> list[dg.EventLogRecord]:
    """Every event of one type in the run's event log, oldest first."""
    records: list[dg.EventLogRecord] = []
    cursor = None
    while True:
        page = instance.get_records_for_run(run_id, cursor=cursor, of_type=event_type, limit=_PAGE)
        records.extend(page.records)
        if not page.has_more:
            return records
        cursor = page.cursor


def run_materializations(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    """ "asset:key" of every partition the run's own event log materialized."""
    labels: set[str] = set()
    for record in run_records(instance, run_id, dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = record.event_log_entry.asset_materialization
        if materialization is not None and materialization.partition is not None:
            labels.add(f"{materialization.asset_key.to_user_string()}:{materialization.partition}")
    return labels


def settled_materializations(
    instance: dg.DagsterInstance, run_id: str, labels: Iterable[str]
) -> set[str]:
    """Those of `labels` materialized by `settle_run` for this run."""
    by_asset: dict[str, list[str]] = {}
    for label in labels:
        asset, key = label.split(":", 1)
        by_asset.setdefault(asset, []).append(key)
    found: set[str] = set()
    for asset, keys in by_asset.items():
        records_filter = dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=keys)
        cursor = None
        while True:
            page = instance.fetch_materializations(records_filter, limit=_PAGE, cursor=cursor)
            for record in page.records:
                materialization = record.asset_materialization
                if materialization is None or materialization.partition is None:
                    continue
                entry = materialization.metadata.get(SETTLED_FOR_RUN)
                if getattr(entry, "value", entry) == run_id:
                    found.add(f"{asset}:{materialization.partition}")
            if not page.has_more:
                break
            cursor = page.cursor
    return found


def wait_for_run_worker(instance: dg.DagsterInstance, run_id: str, timeout_s: float) -> None:
    """Wait until the run's worker process (its pid is in the run's "Started process" event)
    is gone, at most `timeout_s`. A worker on another machine is not visible: no wait."""
    pid = None
    for record in run_records(instance, run_id, dg.DagsterEventType.ENGINE_EVENT):
        found = _STARTED_PROCESS.search(record.event_log_entry.message or "")
        if found:
            pid = int(found.group(1))
    if pid is None or pid == os.getpid():
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            pass  # someone else's process with that pid: keep to the bound
        time.sleep(0.2)


def _partition(label: str) -> ContentPartition:
    return ContentPartition.parse(label.split(":", 1)[1])


def _materialization(label: str, rows: int, run_id: str) -> dg.AssetMaterialization:
    asset, key = label.split(":", 1)
    return dg.AssetMaterialization(
        asset_key=dg.AssetKey(asset),
        partition=key,
        description=f"Committed by run {run_id}, which ended before recording it.",
        metadata={SETTLED_FOR_RUN: run_id, "dagster/row_count": rows},
    )


def _not_reached(
    label: str, status: dg.DagsterRunStatus, step_class: str | None
) -> PartitionOutcome:
    """The row of a partition without one: the class the step reported for it when it could
    not write its row (the warehouse was away), else `stopped`."""
    asset, key = label.split(":", 1)
    outcome = stopped_outcome(AssetName(asset), ContentPartition.parse(key))
    reported = str(step_class or "").split(" ", 1)[0]
    if reported in ErrorClass.__members__.values():
        return dataclasses.replace(
            outcome,
            error_class=ErrorClass(reported),
            message=f"Failed ({step_class}) in run; its row was written after the run ended.",
        )
    if status == dg.DagsterRunStatus.CANCELED:
        return outcome
    return dataclasses.replace(
        outcome,
        message="Not attempted: the run ended FAILURE (its process died or the step failed "
        "before it got there) before this partition landed.",
    )


def last_failure_metadata(instance: dg.DagsterInstance, run_id: str) -> dict[str, object]:
    """The metadata of the step's LAST failure (after its retries), {} when none carried any."""
    for record in reversed(run_records(instance, run_id, dg.DagsterEventType.STEP_FAILURE)):
        event = record.event_log_entry.dagster_event
        data = event.step_failure_data if event is not None else None
        if data is not None and data.user_failure_data is not None:
            return dict(data.user_failure_data.metadata)
    return {}


def json_value(entry: object, default: Any) -> Any:
    value = getattr(entry, "value", entry)
    return default if value is None else value
