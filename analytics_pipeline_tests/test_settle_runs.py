"""The account of an ingestion run that ended without the step's own (defs/settle.py): the
run-status sensors on a real Dagster instance and a real warehouse (SQLite and PostgreSQL).

The run is recorded as the step leaves it when a Terminate lands between two of its events:
one partition materialized in the run, one more committed (partition_loads) without a
materialization, one failed with a row, the rest never reached.
"""

from __future__ import annotations

import datetime as dt
import uuid

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.automation import (
    settle_canceled_ingestion_runs,
    settle_failed_ingestion_runs,
)
from analytics_pipeline.defs.partitions import INTEGRATIONS_PARTITIONS_NAME, range_run_tags
from analytics_pipeline.defs.resources import WarehouseResource
from analytics_pipeline.defs.settle import SETTLED_FOR_RUN, settle_run
from analytics_pipeline.records import AssetName, ContentPartition
from analytics_pipeline.warehouse import slots, tables
from analytics_pipeline_tests.helpers import track_facebook_pages

DAY = dt.date(2026, 11, 2)
PAGES = {"settle-a": "1000001", "settle-b": "1000002"}
METADATA = AssetName.CONTENT_METADATA.value
DONE = ContentPartition(DAY, "settle-a")  # materialized in the run
LATE = ContentPartition(DAY, "settle-b")  # committed, never recorded in Dagster


def _label(asset: str, partition: ContentPartition) -> str:
    return f"{asset}:{partition.key}"


EVERY = {_label(asset.value, p) for asset in AssetName for p in (DONE, LATE)}


def _ended_run(
    instance: dg.DagsterInstance,
    engine: sa.Engine,
    status: str,
    job_name: str = "ingestion_job",
    asset_selection: frozenset[dg.AssetKey] | None = None,
) -> dg.DagsterRun:
    """An ingestion run over both pages for DAY, ended with `status`, as described above."""
    instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, list(PAGES))
    run = instance.add_run(
        dg.DagsterRun(
            job_name=job_name,
            asset_selection=asset_selection,
            run_id=str(uuid.uuid4()),
            tags=range_run_tags(DAY, DAY, list(PAGES)),
            status=dg.DagsterRunStatus.SUCCESS
            if status == "SUCCESS"
            else dg.DagsterRunStatus.STARTED,
        )
    )
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        for partition in (DONE, LATE):
            wh.record_partition_load(
                conn,
                integration_id=partition.integration_id,
                asset=METADATA,
                partition_date=DAY,
                loaded_at=now,
                run_id=run.run_id,
                rows_written=3,
                details={},
            )
        wh.record_failure(
            conn,
            organization_id="org-settle",
            integration_id=DONE.integration_id,
            asset=AssetName.ACCOUNT_DAILY_METRICS.value,
            partition_key=DONE.key,
            error_class="transient",
            platform_code=None,
            message="HTTP 503",
            run_id=run.run_id,
            occurred_at=now,
        )
    # The step's own materialization of DONE, in the run's event log.
    instance.report_runless_asset_event(dg.AssetMaterialization(METADATA, partition=DONE.key))
    _move_last_materialization_into(instance, run)
    if status == "CANCELED":
        instance.report_run_canceled(run)
    elif status == "FAILURE":
        instance.report_run_failed(run)
    ended = instance.get_run_by_id(run.run_id)
    assert ended is not None and ended.status.value == status
    return ended


def _move_last_materialization_into(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    """Record the last (runless) materialization again as an event of `run`: what the step's
    yield records. The runless copy does not name the run: nothing settles it."""
    record = instance.fetch_materializations(dg.AssetKey(METADATA), limit=1).records[0]
    entry = record.event_log_entry
    instance.handle_new_event(
        dg.EventLogEntry(
            error_info=None,
            level=entry.level,
            user_message="",
            run_id=run.run_id,
            timestamp=entry.timestamp,
            step_key="social_ingestion",
            job_name=run.job_name,
            dagster_event=entry.dagster_event,
        )
    )


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


def _rows(engine: sa.Engine, run_id: str) -> dict[str, str]:
    with engine.connect() as conn:
        query = sa.select(tables.ingestion_failures).where(
            tables.ingestion_failures.c.run_id == run_id
        )
        return {f"{r.asset}:{r.partition_key}": r.error_class for r in conn.execute(query)}


def _settled(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    labels = set()
    for record in instance.fetch_materializations(dg.AssetKey(METADATA), limit=100).records:
        materialization = record.asset_materialization
        entry = materialization.metadata.get(SETTLED_FOR_RUN) if materialization else None
        if entry is not None and entry.value == run_id:
            labels.add(f"{METADATA}:{materialization.partition}")
    return labels


def _evaluate(sensor, instance, run, engine_url: str):
    event = instance.all_logs(run.run_id)[-1].dagster_event
    with dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"warehouse": WarehouseResource(url=engine_url)},
    ) as context:
        if sensor is settle_failed_ingestion_runs:
            return sensor(context.for_run_failure())
        return sensor(context)


@pytest.mark.parametrize("status", ["CANCELED", "FAILURE"])
def test_an_ended_run_is_settled_once(instance, engine, warehouse_url, status):
    track_facebook_pages(engine, PAGES, "SETTLE_TOKEN", organization_id="org-settle")
    run = _ended_run(instance, engine, status)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:  # the step that never came back held its platform's slot
        assert slots.acquire(conn, "facebook", run.run_id, 2, now)
    sensor = (
        settle_canceled_ingestion_runs if status == "CANCELED" else settle_failed_ingestion_runs
    )
    result = _evaluate(sensor, instance, run, warehouse_url)
    assert "1 committed partition(s) materialized, 3 failure row(s) written" in str(
        result.skip_message
    )
    # The committed partition is materialized for the run, once.
    assert _settled(instance, run.run_id) == {_label(METADATA, LATE)}
    rows = _rows(engine, run.run_id)
    account = {_label(AssetName.ACCOUNT_DAILY_METRICS.value, DONE)}
    assert set(rows) == EVERY - {_label(METADATA, DONE), _label(METADATA, LATE)}
    assert {rows[label] for label in set(rows) - account} == {"stopped"}
    assert rows[_label(AssetName.ACCOUNT_DAILY_METRICS.value, DONE)] == "transient"
    with engine.connect() as conn:  # released at once, not after the slot went stale
        assert slots.holders(conn, "facebook", now) == []
    # Idempotent: a second evaluation (the CLI after the sensor, or the reverse) adds nothing.
    again = settle_run(instance, engine, run.run_id)
    assert again is not None and (again.materialized, again.failed) == ([], [])
    assert _rows(engine, run.run_id) == rows
    assert _settled(instance, run.run_id) == {_label(METADATA, LATE)}


INGESTION_KEYS = frozenset(dg.AssetKey(asset.value) for asset in AssetName)
KPI_KEY = dg.AssetKey("account_kpis_daily")


def test_a_ui_backfill_run_of_the_ingestion_assets_is_settled(instance, engine, warehouse_url):
    """A backfill launched from the UI or GraphQL runs the implicit asset job, here with a KPI
    asset selected too: its ingestion partitions are settled, nothing of the KPI asset."""
    track_facebook_pages(engine, PAGES, "SETTLE_TOKEN", organization_id="org-settle")
    run = _ended_run(instance, engine, "FAILURE", "__ASSET_JOB", INGESTION_KEYS | {KPI_KEY})
    result = _evaluate(settle_failed_ingestion_runs, instance, run, warehouse_url)
    assert "1 committed partition(s) materialized, 3 failure row(s) written" in str(
        result.skip_message
    )
    assert set(_rows(engine, run.run_id)) == EVERY - {
        _label(METADATA, DONE),
        _label(METADATA, LATE),
    }


def test_a_run_of_other_assets_is_left_alone(instance, engine, warehouse_url):
    track_facebook_pages(engine, PAGES, "SETTLE_TOKEN", organization_id="org-settle")
    run = _ended_run(instance, engine, "FAILURE", "__ASSET_JOB", frozenset({KPI_KEY}))
    result = _evaluate(settle_failed_ingestion_runs, instance, run, warehouse_url)
    assert "Not an ingestion run" in str(result.skip_message)
    assert settle_run(instance, engine, run.run_id) is None


def test_a_successful_run_is_left_alone(instance, engine, warehouse_url):
    track_facebook_pages(engine, PAGES, "SETTLE_TOKEN", organization_id="org-settle")
    run = _ended_run(instance, engine, "SUCCESS")
    before = instance.fetch_materializations(dg.AssetKey(METADATA), limit=100).records
    result = _evaluate(settle_canceled_ingestion_runs, instance, run, warehouse_url)
    assert "Not an ingestion run that ended without its account" in str(result.skip_message)
    assert settle_run(instance, engine, run.run_id) is None
    assert _rows(engine, run.run_id) == {
        _label(AssetName.ACCOUNT_DAILY_METRICS.value, DONE): "transient"
    }
    after = instance.fetch_materializations(dg.AssetKey(METADATA), limit=100).records
    assert len(after) == len(before)
