"""Weekly and monthly rollups: the rules of kpis/rollup.py per scope, the idempotent write of a
period (stale rows deleted), the assets and their metadata, the checks failing on violating rows
(the blocking one failing the step), the sensor that follows the daily KPIs, and the report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.cli import main
from analytics_pipeline.defs import kpi_rollup_assets
from analytics_pipeline.defs.kpi_checks import ACCOUNT_KPIS_DAILY, CONTENT_PERFORMANCE_DAILY
from analytics_pipeline.defs.kpi_rollup_assets import (
    KPI_ROLLUPS_MONTHLY,
    KPI_ROLLUPS_WEEKLY,
    kpi_monthly_rollups,
    kpi_weekly_rollups,
    monthly_partitions,
    weekly_partitions,
)
from analytics_pipeline.defs.kpi_rollup_automation import (
    existing_periods,
    kpi_rollups_after_daily_sensor,
    rollup_run_requests,
)
from analytics_pipeline.defs.kpi_rollup_checks import RATE_CHECK, TOTALS_CHECK, run_rollup_checks
from analytics_pipeline.defs.partitions import RANGE_END_TAG, RANGE_START_TAG, SETTINGS
from analytics_pipeline.defs.resources import WarehouseResource
from analytics_pipeline.kpis import periods
from analytics_pipeline.warehouse import make_engine, migrate
from analytics_pipeline.warehouse import tables as t
from analytics_pipeline.warehouse.kpi_rollups import refresh_period
from analytics_pipeline_tests.independent_sql import NOW, seed_with_daily_kpis
from analytics_pipeline_tests.kpi_data import BEFORE, DAY

WEEK_OF_DAY = DAY  # Monday 2 March 2026
WEEK_OF_BEFORE = BEFORE - dt.timedelta(days=6)  # Sunday 1 March is that week's last day
MARCH = BEFORE
kr, akd = t.kpi_rollups, t.account_kpis_daily


@pytest.fixture
def computed(engine: sa.Engine) -> sa.Engine:
    return seed_with_daily_kpis(engine, [BEFORE, DAY])


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, sa.Engine]:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    monkeypatch.setenv("ANALYTICS_WAREHOUSE_URL", url)
    engine = make_engine(url)
    migrate(engine)
    return url, seed_with_daily_kpis(engine, [BEFORE, DAY])


def _rows(engine: sa.Engine, grain: str, start: dt.date) -> dict[tuple[str, str], dict[str, Any]]:
    query = sa.select(kr).where(kr.c.period_grain == grain, kr.c.period_start == start)
    with engine.connect() as conn:
        return {(r["scope"], r["scope_key"]): dict(r) for r in conn.execute(query).mappings()}


# --- rules and the write -------------------------------------------------------------------------


def test_a_week_per_scope(computed: sa.Engine) -> None:
    with computed.begin() as conn:
        result = refresh_period(conn, periods.WEEK, WEEK_OF_DAY, NOW)
    assert (result.end, result.counts.inserted) == (dt.date(2026, 3, 8), 10)
    rows = _rows(computed, periods.WEEK, WEEK_OF_DAY)
    fb, ig = rows[("integration", "fb-1")], rows[("integration", "ig-1")]
    # fb-1: 1 March 1000 followers -> 2 March 1010
    assert (fb["followers_start"], fb["followers_end"], fb["follower_growth"]) == (1000, 1010, 10)
    assert fb["followers_end_date"] == DAY and fb["engagement_rate"] == pytest.approx(17 / 5000)
    assert ig["follower_growth"] is None and ig["engagements_total"] == -7  # decreased counter
    org_a = rows[("organization", "org-a")]
    assert (org_a["engagements_total"], org_a["reach_total"], org_a["items_published"]) == (
        10,
        5000,
        2,
    )
    # ig-1 has no snapshot before the week: the organization's growth is unknown, not 10
    assert org_a["follower_growth"] is None and org_a["integrations_with_follower_growth"] == 1
    assert org_a["platform"] is None and org_a["integrations"] == 2
    assert (org_a["top_content_integration_id"], org_a["top_content"]) == ("fb-1", "p1")
    facebook = rows[("platform", "facebook")]
    assert (facebook["organization_id"], facebook["follower_growth"]) == ("org-a", 10)
    org_b = rows[("organization", "org-b")]
    assert org_b["reach_total"] is None and org_b["days_with_reach"] == 0  # unknown, never 0
    assert (org_b["top_content"], org_b["top_content_engagements"]) == ("u1", 10)


def test_a_month_averages_and_bounds_over_its_known_days(computed: sa.Engine) -> None:
    with computed.begin() as conn:
        refresh_period(conn, periods.MONTH, MARCH, NOW)
    rows = _rows(computed, periods.MONTH, MARCH)
    x = rows[("integration", "x-1")]  # 8 on 1 March, 5 on 2 March
    assert (x["days"], x["engagements_total"], x["engagements_min"], x["engagements_max"]) == (
        2,
        13,
        5,
        8,
    )
    assert x["engagements_avg"] == pytest.approx(6.5)
    org_b = rows[("organization", "org-b")]  # a day's value sums its integrations: 8, then 15
    assert (org_b["engagements_min"], org_b["engagements_max"]) == (8, 15)
    assert org_b["followers_end"] == 800 and org_b["followers_end_date"] == BEFORE
    assert org_b["follower_growth"] is None  # no snapshot on 28 February


def test_rewriting_a_period_changes_nothing_and_deletes_stale_rows(computed: sa.Engine) -> None:
    with computed.begin() as conn:
        refresh_period(conn, periods.WEEK, WEEK_OF_DAY, NOW)
    with computed.begin() as conn:
        again = refresh_period(conn, periods.WEEK, WEEK_OF_DAY, NOW + dt.timedelta(hours=1))
    assert (again.counts.unchanged, again.counts.written, again.deleted) == (10, 0, 0)
    with computed.begin() as conn:
        conn.execute(sa.delete(akd).where(akd.c.integration_id == "x-1"))
        gone = refresh_period(conn, periods.WEEK, WEEK_OF_DAY, NOW)
    assert gone.deleted == 2  # x-1 and org-b's x platform row
    rows = _rows(computed, periods.WEEK, WEEK_OF_DAY)
    assert ("integration", "x-1") not in rows and ("platform", "x") not in rows
    assert rows[("organization", "org-b")]["engagements_total"] == 10
    with pytest.raises(ValueError, match="not the first day"), computed.begin() as conn:
        refresh_period(conn, periods.WEEK, DAY + dt.timedelta(days=1), NOW)


# --- checks --------------------------------------------------------------------------------------


def _check_results(engine: sa.Engine) -> dict[str, dg.AssetCheckResult]:
    keys = [dg.AssetCheckKey(KPI_ROLLUPS_WEEKLY, name) for name in (TOTALS_CHECK, RATE_CHECK)]
    results = run_rollup_checks(engine, KPI_ROLLUPS_WEEKLY, periods.WEEK, keys, [WEEK_OF_DAY])
    return {result.check_name: result for result in results if result.check_name}


def _rollup(scope_key: str, **values: object) -> sa.Update:
    return sa.update(kr).where(kr.c.scope_key == scope_key).values(**values)


VIOLATIONS: dict[str, tuple[str, Any]] = {
    "a total": (TOTALS_CHECK, lambda: _rollup("fb-1", engagements_total=18)),
    "a day count": (TOTALS_CHECK, lambda: _rollup("org-b", days_with_impressions=2)),
    "a missing row": (TOTALS_CHECK, lambda: sa.delete(kr).where(kr.c.scope_key == "li-1")),
    "a row without days": (
        TOTALS_CHECK,
        lambda: sa.delete(akd).where(akd.c.integration_id == "x-1", akd.c.metric_date == DAY),
    ),
    "a negative rate": (RATE_CHECK, lambda: _rollup("fb-1", engagement_rate=-0.5)),
    "a rate above the bound": (RATE_CHECK, lambda: _rollup("org-a", engagement_rate=7.0)),
}


@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_each_check_fails_on_a_violating_row(computed: sa.Engine, case: str) -> None:
    with computed.begin() as conn:
        refresh_period(conn, periods.WEEK, WEEK_OF_DAY, NOW)
    assert all(result.passed for result in _check_results(computed).values())
    name, violation = VIOLATIONS[case]
    with computed.begin() as conn:
        conn.execute(violation())
    results = _check_results(computed)
    assert not results[name].passed and results[name].metadata["violations"].value >= 1
    assert [other for other, result in results.items() if not result.passed] == [name]


def test_a_failed_totals_check_fails_the_step(
    warehouse: tuple[str, sa.Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = warehouse
    real = kpi_rollup_assets.refresh_period

    def wrong_total(conn: sa.Connection, *args: Any) -> Any:
        result = real(conn, *args)
        conn.execute(_rollup("org-a", reach_total=1))
        return result

    monkeypatch.setattr(kpi_rollup_assets, "refresh_period", wrong_total)
    result = dg.materialize(
        [kpi_weekly_rollups],
        partition_key=WEEK_OF_DAY.isoformat(),
        resources={"warehouse": WarehouseResource(url=url)},
        raise_on_error=False,
    )
    assert not result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks[TOTALS_CHECK].passed and checks[RATE_CHECK].passed


# --- assets --------------------------------------------------------------------------------------


def _materializations(result: dg.ExecuteInProcessResult, node: str) -> dict[str, Any]:
    return {m.partition: m.metadata for m in result.asset_materializations_for_node(node)}


def test_a_week_partition_materializes_with_business_metadata(
    warehouse: tuple[str, sa.Engine],
) -> None:
    url, engine = warehouse
    result = dg.materialize(
        [kpi_weekly_rollups],
        partition_key=WEEK_OF_DAY.isoformat(),
        resources={"warehouse": WarehouseResource(url=url)},
    )
    assert result.success
    metadata = _materializations(result, "kpi_weekly_rollups")[WEEK_OF_DAY.isoformat()]
    assert metadata["dagster/row_count"].value == 10
    assert metadata["engagements_total"].value == 10 + 15  # org-a + org-b
    assert metadata["reach_total"].value == 5000 and metadata["items_published"].value == 3
    assert metadata["follower_growth_known"].value == 10
    assert "| org-a | facebook | fb-1 | p1 | 10 |" in metadata["top_content"].value
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 2 and all(check.passed for check in checks)
    assert len(_rows(engine, periods.WEEK, WEEK_OF_DAY)) == 10


def test_a_range_run_writes_each_month(warehouse: tuple[str, sa.Engine]) -> None:
    url, engine = warehouse
    result = dg.materialize(
        [kpi_monthly_rollups],
        resources={"warehouse": WarehouseResource(url=url)},
        tags={RANGE_START_TAG: "2026-02-01", RANGE_END_TAG: "2026-03-01"},
    )
    assert result.success
    metadata = _materializations(result, "kpi_monthly_rollups")
    assert metadata["2026-02-01"]["dagster/row_count"].value == 0
    assert metadata["2026-03-01"]["engagements_total"].value == 27 + 23
    assert len(_rows(engine, periods.MONTH, MARCH)) == 10


def test_rollups_depend_on_the_daily_kpis_of_their_days() -> None:
    from analytics_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    for key in (KPI_ROLLUPS_WEEKLY, KPI_ROLLUPS_MONTHLY):
        node = graph.get(key)
        assert node.group_name == "kpis" and node.owners and node.kinds
        assert node.parent_keys == {ACCOUNT_KPIS_DAILY, CONTENT_PERFORMANCE_DAILY}
    weekly = graph.get(KPI_ROLLUPS_WEEKLY)
    mapping = graph.get_partition_mapping(KPI_ROLLUPS_WEEKLY, ACCOUNT_KPIS_DAILY)
    daily = graph.get(ACCOUNT_KPIS_DAILY).partitions_def
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        weekly.partitions_def.subset_with_partition_keys([WEEK_OF_DAY.isoformat()]),
        weekly.partitions_def,
        daily,
    ).partitions_subset.get_partition_keys()
    assert list(upstream) == [(DAY + dt.timedelta(days=n)).isoformat() for n in range(7)]


def test_partitions_run_from_the_first_days_period_through_the_one_in_progress() -> None:
    today = dt.datetime.now(dt.UTC).date()
    first_day = SETTINGS.partitions_start_date
    for grain, partitions in (
        (periods.WEEK, weekly_partitions),
        (periods.MONTH, monthly_partitions),
    ):
        keys = partitions.get_partition_keys()
        assert keys[0] == periods.period_start(grain, first_day).isoformat()
        assert keys[-1] == periods.period_start(grain, today).isoformat()
        assert existing_periods(grain, [dt.date.fromisoformat(k) for k in keys], today, first_day)
    assert dt.date.fromisoformat(weekly_partitions.get_partition_keys()[-1]).weekday() == 0


# --- orchestration -------------------------------------------------------------------------------


def _requested(requests: list[dg.RunRequest]) -> list[tuple[str | None, str | None, str | None]]:
    return [
        (r.job_name, r.partition_key or r.tags.get(RANGE_START_TAG), r.tags.get(RANGE_END_TAG))
        for r in requests
    ]


def test_a_periods_last_day_refreshes_the_next_period_too() -> None:
    requests = rollup_run_requests([BEFORE], 7, today=dt.date(2026, 12, 1), first_day=BEFORE)
    assert _requested(requests) == [
        ("kpi_rollups_weekly_job", "2026-02-23", "2026-03-02"),  # 1 March ends its week
        ("kpi_rollups_monthly_job", "2026-03-01", None),  # not February: before the start
    ]


def test_the_period_in_progress_is_refreshed_and_the_next_is_not_asked_for() -> None:
    sunday = dt.date(2026, 3, 8)
    requests = rollup_run_requests([sunday], 7, today=sunday, first_day=dt.date(2026, 1, 1))
    assert _requested(requests) == [
        ("kpi_rollups_weekly_job", "2026-03-02", None),  # the week of 9 March does not exist yet
        ("kpi_rollups_monthly_job", "2026-03-01", None),
    ]


def test_the_sensor_requests_the_periods_of_materialized_days_once() -> None:
    with dg.instance_for_test() as instance:
        for key, day in (
            (ACCOUNT_KPIS_DAILY, DAY),
            (CONTENT_PERFORMANCE_DAILY, DAY),
            (ACCOUNT_KPIS_DAILY, dt.date(2026, 3, 18)),
        ):
            instance.report_runless_asset_event(
                dg.AssetMaterialization(key, partition=day.isoformat())
            )
        result = kpi_rollups_after_daily_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.SensorResult)
        assert _requested(list(result.run_requests or [])) == [
            ("kpi_rollups_weekly_job", "2026-03-02", None),
            ("kpi_rollups_weekly_job", "2026-03-16", None),
            ("kpi_rollups_monthly_job", "2026-03-01", None),
        ]
        again = kpi_rollups_after_daily_sensor(
            dg.build_sensor_context(instance, cursor=result.cursor)
        )
        assert isinstance(again, dg.SkipReason)
    assert kpi_rollups_after_daily_sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_a_re_materialized_day_leads_to_its_week_and_month(
    warehouse: tuple[str, sa.Engine],
) -> None:
    from analytics_pipeline.defs.kpi_assets import kpi_daily

    url, engine = warehouse
    resources = {"warehouse": WarehouseResource(url=url)}
    with dg.instance_for_test() as instance:
        daily = dg.materialize(
            [kpi_daily], partition_key=DAY.isoformat(), instance=instance, resources=resources
        )
        assert daily.success
        result = kpi_rollups_after_daily_sensor(dg.build_sensor_context(instance=instance))
        assert isinstance(result, dg.SensorResult)
        requests = list(result.run_requests or [])
        assert _requested(requests) == [
            ("kpi_rollups_weekly_job", WEEK_OF_DAY.isoformat(), None),
            ("kpi_rollups_monthly_job", MARCH.isoformat(), None),
        ]
        for request, assets in zip(
            requests, ([kpi_weekly_rollups], [kpi_monthly_rollups]), strict=True
        ):
            run = dg.materialize(
                assets, partition_key=request.partition_key, instance=instance, resources=resources
            )
            assert run.success
    assert len(_rows(engine, periods.WEEK, WEEK_OF_DAY)) == 10
    assert len(_rows(engine, periods.MONTH, MARCH)) == 10


# --- report --------------------------------------------------------------------------------------


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    assert main(["report", "--org", "org-a", *args, "--format", "json"]) == 0
    return list(json.loads(capsys.readouterr().out))


def test_the_report_reads_stored_rollups_and_scopes(
    warehouse: tuple[str, sa.Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    _, engine = warehouse
    for start in (WEEK_OF_BEFORE, WEEK_OF_DAY):
        with engine.begin() as conn:
            refresh_period(conn, periods.WEEK, start, NOW)
    weeks = _json(
        capsys, "--from", str(BEFORE), "--to", str(DAY), "--by", "week", "--scope", "organization"
    )
    assert [(w["period_start"], w["engagements_total"]) for w in weeks] == [
        ("2026-02-23", 17),
        ("2026-03-02", 10),
    ]
    ranged = _json(capsys, "--from", str(BEFORE), "--to", str(DAY), "--scope", "platform")
    assert [(r["platform"], r["engagements_total"]) for r in ranged] == [
        ("facebook", 34),
        ("instagram", -7),
    ]
    assert (
        main(["report", "--org", "org-a", "--from", str(DAY), "--to", str(DAY), "--by", "month"])
        == 0
    )
    assert "No KPIs for org-a" in capsys.readouterr().out  # March was never rolled up
