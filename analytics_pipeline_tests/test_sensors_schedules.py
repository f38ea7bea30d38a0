"""The partition-sync sensor and the daily schedule, evaluated against a real SQLite warehouse."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.automation import (
    daily_ingestion_schedule,
    intraday_ephemeral_schedule,
    lookback_completion_sensor,
    plan_lookback_reruns,
    tracked_integrations_sensor,
)
from analytics_pipeline.defs.partitions import INTEGRATIONS_PARTITIONS_NAME, SETTINGS
from analytics_pipeline.defs.resources import WarehouseResource
from analytics_pipeline.records import ContentPartition
from analytics_pipeline.warehouse.migrations import migrate

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@pytest.fixture
def warehouse(tmp_path) -> WarehouseResource:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    migrate(wh.make_engine(url))
    return WarehouseResource(url=url)


def _add(resource: WarehouseResource, integration_id: str, status: str = "active") -> None:
    now = dt.datetime.now(dt.UTC)
    with resource.get_engine().begin() as conn:
        wh.add_integration(
            conn,
            organization_id="org",
            integration_id=integration_id,
            platform="facebook",
            external_account_id="1000001",
            display_name=integration_id,
            credential_env="TOKEN_ENV",
            now=now,
        )
        if status != "active":
            wh.set_integration_status(conn, integration_id, status, "test", now)


def _evaluate_sensor(instance: dg.DagsterInstance, resource: WarehouseResource):
    with dg.build_sensor_context(instance=instance, resources={"warehouse": resource}) as context:
        return tracked_integrations_sensor(context)


def test_sensor_adds_new_integrations_and_requests_their_lookback_window(warehouse):
    _add(warehouse, "fb-a")
    _add(warehouse, "fb-paused", status="paused")
    with dg.instance_for_test() as instance:
        result = _evaluate_sensor(instance, warehouse)
        assert isinstance(result, dg.SensorResult)
        (add_request,) = result.dynamic_partitions_requests
        assert isinstance(add_request, dg.AddDynamicPartitionsRequest)
        assert list(add_request.partition_keys) == ["fb-a", "fb-paused"]
        # Only the active integration gets its initial run: one run over its whole window.
        (run,) = result.run_requests
        yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        first = yesterday - dt.timedelta(days=SETTINGS.lookback_days - 1)
        assert run.tags[RANGE_START] == ContentPartition(first, "fb-a").key
        assert run.tags[RANGE_END] == ContentPartition(yesterday, "fb-a").key


def test_sensor_removes_partitions_of_deleted_integrations_and_then_rests(warehouse):
    _add(warehouse, "fb-a")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, ["fb-a", "fb-gone"])
        result = _evaluate_sensor(instance, warehouse)
        assert isinstance(result, dg.SensorResult)
        (delete_request,) = result.dynamic_partitions_requests
        assert isinstance(delete_request, dg.DeleteDynamicPartitionsRequest)
        assert list(delete_request.partition_keys) == ["fb-gone"]
        assert result.run_requests == []
        instance.delete_dynamic_partition(INTEGRATIONS_PARTITIONS_NAME, "fb-gone")
        assert isinstance(_evaluate_sensor(instance, warehouse), dg.SkipReason)


def _evaluate_schedule(schedule, instance, warehouse, when: dt.datetime):
    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, resources={"warehouse": warehouse}
    ) as context:
        return schedule(context)


SCHEDULED = dt.datetime(2026, 11, 20, 1, 30, tzinfo=dt.UTC)


def test_daily_schedule_requests_yesterday_for_active_integrations_in_one_run(warehouse):
    for key in ("fb-a", "fb-b", "fb-c"):
        _add(warehouse, key)
    _add(warehouse, "fb-late", status="paused")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(
            INTEGRATIONS_PARTITIONS_NAME, ["fb-a", "fb-b", "fb-c", "fb-late"]
        )
        (run,) = _evaluate_schedule(daily_ingestion_schedule, instance, warehouse, SCHEDULED)
        assert run.tags[RANGE_START] == "2026-11-19|fb-a"
        assert run.tags[RANGE_END] == "2026-11-19|fb-c"
        assert run.run_key == "daily-2026-11-19-fb-a"


def test_daily_schedule_splits_around_a_paused_integration(warehouse):
    _add(warehouse, "fb-a")
    _add(warehouse, "fb-paused", status="paused")
    _add(warehouse, "fb-c")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, ["fb-a", "fb-paused", "fb-c"])
        runs = _evaluate_schedule(daily_ingestion_schedule, instance, warehouse, SCHEDULED)
        assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in runs] == [
            ("2026-11-19|fb-a", "2026-11-19|fb-a"),
            ("2026-11-19|fb-c", "2026-11-19|fb-c"),
        ]


def test_schedules_skip_when_nothing_is_eligible(warehouse):
    _add(warehouse, "fb-a", status="paused")
    _add(warehouse, "fb-b")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, ["fb-a", "fb-b"])
        result = _evaluate_schedule(intraday_ephemeral_schedule, instance, warehouse, SCHEDULED)
        # Facebook content does not expire within a day: nothing for the intraday run.
        assert isinstance(result, dg.SkipReason)
        instance.delete_dynamic_partition(INTEGRATIONS_PARTITIONS_NAME, "fb-b")
        result = _evaluate_schedule(daily_ingestion_schedule, instance, warehouse, SCHEDULED)
        assert isinstance(result, dg.SkipReason)


def test_intraday_schedule_targets_only_platforms_with_expiring_content(warehouse):
    _add(warehouse, "fb-a")
    now = dt.datetime.now(dt.UTC)
    with warehouse.get_engine().begin() as conn:
        wh.add_integration(
            conn,
            organization_id="org",
            integration_id="ig-a",
            platform="instagram",
            external_account_id="17841400000000001",
            display_name="ig",
            credential_env="TOKEN_ENV",
            now=now,
        )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, ["fb-a", "ig-a"])
        when = dt.datetime(2026, 11, 20, 23, 15, tzinfo=dt.UTC)
        (run,) = _evaluate_schedule(intraday_ephemeral_schedule, instance, warehouse, when)
        # Today's partition (stories are still live), Instagram only.
        assert (run.tags[RANGE_START], run.tags[RANGE_END]) == (
            "2026-11-20|ig-a",
            "2026-11-20|ig-a",
        )


def _load(integration_id: str, day: dt.date, loaded_at: dt.datetime, **details) -> wh.PartitionLoad:
    return wh.PartitionLoad(integration_id, day, loaded_at, details)


def test_lookback_rerun_only_when_the_missing_window_has_landed_since():
    day = dt.date(2026, 11, 20)
    t0 = dt.datetime(2026, 11, 21, 1, 0, tzinfo=dt.UTC)
    window = [day - dt.timedelta(days=n) for n in range(3)]
    metrics = [
        _load("a", day, t0, recordable=True, lookback_days_missing=1),
        _load("b", day, t0, recordable=True, lookback_days_missing=1),
        _load("c", day, t0, recordable=True, lookback_days_missing=0),
    ]
    later = t0 + dt.timedelta(minutes=5)
    metadata = [_load("a", d, later) for d in window]  # a's window is complete now
    metadata += [_load("b", d, later) for d in window[:2]]  # b still misses a day
    metadata += [_load("c", d, t0) for d in window]
    reruns = plan_lookback_reruns(metrics, metadata, lookback_days=3)
    assert [(integration, d) for integration, d, _ in reruns] == [("a", day)]
    # Once re-run (a newer metrics load), nothing is requested again.
    rerun = [_load("a", day, later + dt.timedelta(minutes=1), recordable=True)]
    assert plan_lookback_reruns(rerun, metadata, lookback_days=3) == []


def test_lookback_sensor_requests_a_metrics_only_run(warehouse):
    today = dt.datetime.now(dt.UTC).date()
    day = today - dt.timedelta(days=1)
    t0 = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    with warehouse.get_engine().begin() as conn:
        wh.record_partition_load(
            conn,
            integration_id="fb-a",
            asset="content_daily_metrics",
            partition_date=day,
            loaded_at=t0,
            run_id=None,
            rows_written=3,
            details={"recordable": True, "lookback_days_missing": 1},
        )
        for n in range(SETTINGS.lookback_days):
            wh.record_partition_load(
                conn,
                integration_id="fb-a",
                asset="content_metadata",
                partition_date=day - dt.timedelta(days=n),
                loaded_at=t0 + dt.timedelta(minutes=5),
                run_id=None,
                rows_written=1,
                details={},
            )
    with (
        dg.instance_for_test() as instance,
        dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}) as context,
    ):
        result = lookback_completion_sensor(context)
    (run,) = result.run_requests
    assert run.asset_selection == [dg.AssetKey("content_daily_metrics")]
    assert run.tags[RANGE_START] == run.tags[RANGE_END] == ContentPartition(day, "fb-a").key
