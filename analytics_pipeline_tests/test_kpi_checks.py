"""The KPI asset checks pass on what the KPI step computes and each fails on a violating row
(SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.defs.kpi_checks import KPI_CHECKS, run_kpi_checks
from analytics_pipeline.warehouse import tables as t
from analytics_pipeline.warehouse.kpis import refresh_day
from analytics_pipeline_tests.kpi_data import DAY, seed

NOW = dt.datetime(2026, 3, 3, 2, 0, tzinfo=dt.UTC)
ALL_KEYS = [check.key for check in KPI_CHECKS]
cpd, akd = t.content_performance_daily, t.account_kpis_daily


@pytest.fixture
def computed(engine: sa.Engine) -> sa.Engine:
    seed(engine)
    with engine.begin() as conn:
        refresh_day(conn, DAY, NOW)
    return engine


def _results(engine: sa.Engine) -> dict[str, dg.AssetCheckResult]:
    return {r.check_name: r for r in run_kpi_checks(engine, ALL_KEYS, [DAY]) if r.check_name}


def _content(item: str, **values: object) -> sa.Update:
    return sa.update(cpd).where(cpd.c.external_content_id == item).values(**values)


def _account(integration: str, **values: object) -> sa.Update:
    return sa.update(akd).where(akd.c.integration_id == integration).values(**values)


def test_every_check_passes_on_computed_kpis_and_reports_coverage(computed: sa.Engine) -> None:
    results = _results(computed)
    assert set(results) == {check.name for check in KPI_CHECKS}
    assert all(result.passed for result in results.values()), results
    coverage = results["engagement_coverage_reported"].metadata
    assert coverage["rows"].value == 8
    assert coverage["rows_all_inputs_known"].value == 4  # p2, m1, u1, u2
    assert coverage["rows_some_inputs_known"].value == 2  # p1 (shares), t1 (clicks)
    assert coverage["rows_no_input_known"].value == 2  # m2, m3


VIOLATIONS: dict[str, Callable[[], sa.Update]] = {
    "rates_not_negative": lambda: _content("p1", engagement_rate_on_reach=-0.5),
    "rates_within_upper_bound": lambda: _content("u1", engagement_rate_on_impressions=7.0),
    "engagement_coverage_reported": lambda: _content("t1", engagement_inputs_known=6),
    "engagement_rate_not_negative": lambda: _account("fb-1", engagement_rate=-0.1),
    "engagements_equal_content_sum": lambda: _account("li-1", engagements=11),
}


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_each_check_fails_on_a_violating_row(computed: sa.Engine, name: str) -> None:
    with computed.begin() as conn:
        conn.execute(VIOLATIONS[name]())
    results = _results(computed)
    assert not results[name].passed
    assert results[name].metadata["violations"].value == 1
    assert [other for other, r in results.items() if not r.passed] == [name]


def test_a_negative_rate_on_a_decreased_counter_is_not_a_violation(computed: sa.Engine) -> None:
    with computed.connect() as conn:
        m1 = conn.execute(sa.select(cpd).where(cpd.c.external_content_id == "m1")).mappings().one()
    assert m1["counter_decreased"] and m1["engagement_rate_on_reach"] < 0
    assert _results(computed)["rates_not_negative"].passed
