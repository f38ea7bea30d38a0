"""The partition-sync sensor and the schedules, evaluated against a real SQLite warehouse."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.automation import (
    daily_ingestion_schedule,
    refresh_today_schedule,
    tracked_integrations_sensor,
)
from analytics_pipeline.defs.partitions import (
    INTEGRATIONS_PARTITIONS_NAME,
    PLATFORM_TAG,
    SETTINGS,
)
from analytics_pipeline.defs.resources import WarehouseResource
from analytics_pipeline.ingest import snapshot_day
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
    """A Facebook integration with a page of its own (an account is tracked once)."""
    now = dt.datetime.now(dt.UTC)
    with resource.get_engine().connect() as conn:
        page_id = str(1000001 + len(wh.list_integrations(conn)))
    with resource.get_engine().begin() as conn:
        wh.add_integration(
            conn,
            organization_id="org",
            integration_id=integration_id,
            platform="facebook",
            external_account_id=page_id,
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
        # Only the active integration gets its initial run: one run over the lookback window
        # ending on the current snapshot day (its first lifetime snapshot is taken at once).
        (run,) = result.run_requests
        cutoff = dt.timedelta(hours=SETTINGS.snapshot_cutoff_hours)
        last = snapshot_day(dt.datetime.now(dt.UTC), cutoff)
        first = last - dt.timedelta(days=SETTINGS.lookback_days - 1)
        assert run.tags[RANGE_START] == ContentPartition(first, "fb-a").key
        assert run.tags[RANGE_END] == ContentPartition(last, "fb-a").key


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


def test_daily_schedule_splits_a_large_set_into_runs_of_the_configured_size(warehouse, monkeypatch):
    from analytics_pipeline.defs import automation

    keys = [f"fb-{n}" for n in range(5)]
    for key in keys:
        _add(warehouse, key)
    small = automation.SETTINGS.model_copy(update={"max_integrations_per_run": 2})
    monkeypatch.setattr(automation, "SETTINGS", small)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, keys)
        runs = _evaluate_schedule(daily_ingestion_schedule, instance, warehouse, SCHEDULED)
        assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in runs] == [
            ("2026-11-19|fb-0", "2026-11-19|fb-1"),
            ("2026-11-19|fb-2", "2026-11-19|fb-3"),
            ("2026-11-19|fb-4", "2026-11-19|fb-4"),
        ]
        assert {r.tags[PLATFORM_TAG] for r in runs} == {"facebook"}
        assert len({r.run_key for r in runs}) == 3


def test_schedules_skip_when_nothing_is_eligible(warehouse):
    _add(warehouse, "fb-a", status="paused")
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, ["fb-a"])
        for schedule in (daily_ingestion_schedule, refresh_today_schedule):
            result = _evaluate_schedule(schedule, instance, warehouse, SCHEDULED)
            assert isinstance(result, dg.SkipReason)


@pytest.mark.parametrize(
    ("when", "day"),
    [
        # Before the snapshot cutoff a total observed now is yesterday's end of day.
        (dt.datetime(2026, 11, 21, 0, 0, tzinfo=dt.UTC), "2026-11-20"),
        (dt.datetime(2026, 11, 21, 6, 0, tzinfo=dt.UTC), "2026-11-21"),
        (dt.datetime(2026, 11, 21, 18, 0, tzinfo=dt.UTC), "2026-11-21"),
    ],
)
def test_refresh_schedule_targets_the_current_snapshot_day_of_every_platform(warehouse, when, day):
    _add(warehouse, "fb-a")
    with warehouse.get_engine().begin() as conn:
        wh.add_integration(
            conn,
            organization_id="org",
            integration_id="ig-a",
            platform="instagram",
            external_account_id="17841400000000001",
            display_name="ig",
            credential_env="TOKEN_ENV",
            now=dt.datetime.now(dt.UTC),
        )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, ["fb-a", "ig-a"])
        # One run per platform (the run queue limits runs per `analytics/platform` tag).
        fb_run, ig_run = _evaluate_schedule(refresh_today_schedule, instance, warehouse, when)
        assert (fb_run.tags[RANGE_START], fb_run.tags[RANGE_END]) == (f"{day}|fb-a", f"{day}|fb-a")
        assert (ig_run.tags[RANGE_START], ig_run.tags[RANGE_END]) == (f"{day}|ig-a", f"{day}|ig-a")
        assert (fb_run.tags[PLATFORM_TAG], ig_run.tags[PLATFORM_TAG]) == ("facebook", "instagram")
        # Every tick is a run of its own (stories and fresh totals), never deduplicated.
        assert fb_run.run_key == f"refresh-{when:%Y-%m-%dT%H%M}-fb-a"


def test_refresh_schedule_runs_as_often_as_configured():
    hours = SETTINGS.refresh_interval_hours
    assert refresh_today_schedule.cron_schedule == f"0 */{hours} * * *"
    assert refresh_today_schedule.default_status == dg.DefaultScheduleStatus.RUNNING
