"""The KPI assets in Dagster: a daily partition materializes both tables with plottable business
metadata and passing checks; a range run covers each day; the sensor asks KPI runs for the days
ingestion landed, once the ingestion runs are finished."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.defs.assets import ACCOUNT_DAILY_METRICS, CONTENT_DAILY_METRICS
from analytics_pipeline.defs.kpi_assets import kpi_daily, top_content_markdown
from analytics_pipeline.defs.kpi_automation import (
    LandedEvent,
    day_ranges,
    kpi_run_request,
    kpis_after_ingestion_sensor,
    landed_days,
)
from analytics_pipeline.defs.kpi_checks import ACCOUNT_KPIS_DAILY, CONTENT_PERFORMANCE_DAILY
from analytics_pipeline.defs.partitions import RANGE_END_TAG, RANGE_START_TAG
from analytics_pipeline.defs.resources import WarehouseResource
from analytics_pipeline.warehouse import make_engine, migrate
from analytics_pipeline.warehouse import tables as t
from analytics_pipeline.warehouse.kpis import read_content_day
from analytics_pipeline_tests.kpi_data import BEFORE, DAY, seed


@pytest.fixture
def warehouse(tmp_path: Path) -> tuple[str, sa.Engine]:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    seed(engine)
    return url, engine


def _materialization(
    result: dg.ExecuteInProcessResult, key: dg.AssetKey, day: dt.date
) -> dg.AssetMaterialization:
    found = [
        m
        for m in result.asset_materializations_for_node("kpi_daily")
        if m.asset_key == key and m.partition == day.isoformat()
    ]
    assert len(found) == 1
    return found[0]


def test_a_day_materializes_both_tables_with_business_metadata(
    warehouse: tuple[str, sa.Engine],
) -> None:
    url, engine = warehouse
    result = dg.materialize(
        [kpi_daily],
        partition_key=DAY.isoformat(),
        resources={"warehouse": WarehouseResource(url=url)},
    )
    assert result.success
    content = _materialization(result, CONTENT_PERFORMANCE_DAILY, DAY).metadata
    assert content["dagster/row_count"].value == 8
    assert content["engagements"].value == 10 + 7 - 7 + 10 + 0 + 5
    assert "| facebook | fb-1 | p1 | POST | 10 |" in content["top_content"].value
    account = _materialization(result, ACCOUNT_KPIS_DAILY, DAY).metadata
    assert account["dagster/row_count"].value == 4
    assert account["followers_total"].value == 1010 + 2000
    assert account["follower_growth"].value == 10
    assert account["reach"].value == 5000 and account["impressions"].value == 1200
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 5 and all(check.passed for check in checks)
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(t.account_kpis_daily)) == 4


def test_a_range_run_computes_each_day_in_its_own_partition(
    warehouse: tuple[str, sa.Engine],
) -> None:
    url, engine = warehouse
    result = dg.materialize(
        [kpi_daily],
        resources={"warehouse": WarehouseResource(url=url)},
        tags={RANGE_START_TAG: BEFORE.isoformat(), RANGE_END_TAG: DAY.isoformat()},
    )
    assert result.success
    before = _materialization(result, CONTENT_PERFORMANCE_DAILY, BEFORE).metadata
    assert before["dagster/row_count"].value == 3  # p1, m1, t1 on the day before
    with engine.connect() as conn:
        days = set(conn.scalars(sa.select(t.content_performance_daily.c.metric_date)))
    assert days == {BEFORE, DAY}


def test_top_content_lists_known_engagements_first(warehouse: tuple[str, sa.Engine]) -> None:
    from analytics_pipeline.kpis.content import content_performance

    _, engine = warehouse
    with engine.connect() as conn:
        rows = content_performance(read_content_day(conn, DAY), DAY)
    lines = top_content_markdown(rows, limit=2).splitlines()
    assert len(lines) == 4
    assert "| p1 |" in lines[2] and "| u1 |" in lines[3]  # 10 each, by integration id
    assert "m2" not in top_content_markdown(rows)  # unknown engagements are not ranked


def _event(storage_id: int, run_id: str, key: str | None) -> LandedEvent:
    return LandedEvent(storage_id, run_id, key)


def test_landed_days_stop_at_an_unfinished_run_and_at_an_incomplete_read() -> None:
    events = [
        _event(1, "a", "2026-03-01|fb-1"),
        _event(2, "a", "2026-03-02|ig-1"),
        _event(3, "b", "2026-03-05|fb-1"),  # run b still in progress
        _event(4, "a", "2026-03-06|fb-1"),
    ]
    landed = landed_days(events, {"a"}, None, cursor=0)
    assert landed.days == (dt.date(2026, 3, 1), dt.date(2026, 3, 2)) and landed.cursor == 2
    everything = landed_days(events, {"a", "b"}, None, cursor=0)
    assert everything.cursor == 4 and len(everything.days) == 4
    cut = landed_days(events, {"a", "b"}, 1, cursor=0)
    assert cut.days == (dt.date(2026, 3, 1),) and cut.cursor == 1


def test_days_become_one_run_per_range_of_consecutive_days() -> None:
    days = [dt.date(2026, 3, d) for d in (1, 2, 3, 7)]
    assert day_ranges(days) == [
        (dt.date(2026, 3, 1), dt.date(2026, 3, 3)),
        (dt.date(2026, 3, 7), dt.date(2026, 3, 7)),
    ]
    ranged = kpi_run_request(dt.date(2026, 3, 1), dt.date(2026, 3, 3), 9)
    assert ranged.tags[RANGE_START_TAG] == "2026-03-01"
    assert ranged.tags[RANGE_END_TAG] == "2026-03-03"
    assert (
        kpi_run_request(dt.date(2026, 3, 7), dt.date(2026, 3, 7), 9).partition_key == "2026-03-07"
    )


def test_the_sensor_requests_the_landed_days_once() -> None:
    with dg.instance_for_test() as instance:
        for key, partition in (
            (CONTENT_DAILY_METRICS, "2026-03-02|fb-1"),
            (ACCOUNT_DAILY_METRICS, "2026-03-03|ig-1"),
            (CONTENT_DAILY_METRICS, "2026-03-09|fb-1"),
        ):
            instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
        context = dg.build_sensor_context(instance=instance)
        result = kpis_after_ingestion_sensor(context)
        assert isinstance(result, dg.SensorResult)
        requests = result.run_requests or []
        assert [(r.tags.get(RANGE_START_TAG), r.partition_key) for r in requests] == [
            ("2026-03-02", None),
            (None, "2026-03-09"),
        ]
        again = kpis_after_ingestion_sensor(dg.build_sensor_context(instance, cursor=result.cursor))
        assert isinstance(again, dg.SkipReason)


def test_the_sensor_is_running_by_default() -> None:
    assert kpis_after_ingestion_sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_a_kpi_day_depends_on_that_day_of_every_integration() -> None:
    from analytics_pipeline.definitions import defs
    from analytics_pipeline.defs.partitions import INTEGRATIONS_PARTITIONS_NAME, content_partitions

    graph = defs().resolve_asset_graph()
    kpi = graph.get(CONTENT_PERFORMANCE_DAILY)
    assert kpi.group_name == "kpis" and kpi.owners and kpi.kinds
    assert graph.get(ACCOUNT_KPIS_DAILY).parent_keys >= {ACCOUNT_DAILY_METRICS}
    mapping = graph.get_partition_mapping(CONTENT_PERFORMANCE_DAILY, CONTENT_DAILY_METRICS)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, ["a", "b"])
        upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
            kpi.partitions_def.subset_with_partition_keys(["2026-03-02"]),
            kpi.partitions_def,
            content_partitions,
            dynamic_partitions_store=instance,
        ).partitions_subset.get_partition_keys()
    assert set(upstream) == {"2026-03-02|a", "2026-03-02|b"}
