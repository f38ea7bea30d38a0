"""`kpi_rollups` recomputed with independent SQL (no pandas, no code of kpis/rollup.py) from the
daily KPI tables finds the same numbers, for every scope, a week and a month, on SQLite and
PostgreSQL. The daily tables themselves are recomputed from the base tables by
test_kpis_independent_sql.py, so together they check the rollups against the raw facts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from analytics_pipeline.warehouse import tables as t
from analytics_pipeline.warehouse.kpi_rollups import refresh_period
from analytics_pipeline_tests.independent_sql import (
    NOW,
    assert_same,
    query_rows,
    seed_with_daily_kpis,
)
from analytics_pipeline_tests.kpi_data import BEFORE, DAY

# Written out again here on purpose (not imported from kpis.rollup).
SUBJECT = {
    "integration": "integration_id",
    "organization": "organization_id",
    "platform": "platform",
}
PLATFORM = {"integration": "platform", "organization": "NULL", "platform": "platform"}
STATS = ("engagements", "reach", "impressions")
COLUMNS = [
    "organization_id",
    "scope",
    "scope_key",
    "platform",
    "integrations",
    "days",
    "items_published",
    "new_followers_total",
    *(
        f"{p}{n}{s}"
        for n in STATS
        for p, s in (("days_with_", ""), ("", "_total"), ("", "_avg"), ("", "_min"), ("", "_max"))
    ),
    "engagement_rate",
    "followers_start",
    "followers_end",
    "followers_end_date",
    "follower_growth",
    "integrations_with_follower_growth",
    "top_content_integration_id",
    "top_content",
    "top_content_engagements",
]


def _stats() -> str:
    """COUNT, SUM, AVG, MIN and MAX of each daily statistic, named c1..c15."""
    parts = []
    for n in STATS:
        for function in ("COUNT", "SUM", "AVG", "MIN", "MAX"):
            argument = f"CAST(d.{n} AS FLOAT)" if function == "AVG" else f"d.{n}"
            parts.append(f"{function}({argument}) AS c{len(parts) + 1}")
    return ", ".join(parts)


def _all_known(column: str, value: str) -> str:
    return f"CASE WHEN COUNT(g.{column}) = COUNT(*) THEN {value} END"


def _rollup_sql(scope: str) -> str:
    key = SUBJECT[scope]
    return f"""
    WITH p AS (
      SELECT *, {key} AS subject FROM account_kpis_daily
      WHERE metric_date BETWEEN :first AND :last
    ), d AS (
      SELECT organization_id, subject, metric_date, SUM(engagements) AS engagements,
        SUM(reach) AS reach, SUM(impressions) AS impressions
      FROM p GROUP BY organization_id, subject, metric_date
    ), stats AS (
      SELECT d.organization_id, d.subject, COUNT(*) AS days, {_stats()}
      FROM d GROUP BY d.organization_id, d.subject
    ), totals AS (
      SELECT organization_id, subject, MIN({PLATFORM[scope]}) AS platform,
        COUNT(DISTINCT integration_id) AS integrations, SUM(items_published) AS published,
        SUM(new_followers) AS new_followers,
        SUM(CASE WHEN engagements IS NOT NULL AND reach IS NOT NULL THEN engagements END) AS e,
        SUM(CASE WHEN engagements IS NOT NULL AND reach IS NOT NULL THEN reach END) AS r
      FROM p GROUP BY organization_id, subject
    ), ends AS (
      SELECT s.integration_id, s.followers_total AS f_end, s.metric_date AS f_date FROM p s
      WHERE s.followers_total IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM p later WHERE later.integration_id = s.integration_id
          AND later.followers_total IS NOT NULL AND later.metric_date > s.metric_date)
    ), g AS (
      SELECT m.organization_id, m.subject, b.followers_total AS f_start, ends.f_end,
        ends.f_date, ends.f_end - b.followers_total AS growth
      FROM (SELECT DISTINCT organization_id, integration_id, subject FROM p) m
      LEFT JOIN account_kpis_daily b ON b.integration_id = m.integration_id
        AND b.metric_date = :before
      LEFT JOIN ends ON ends.integration_id = m.integration_id
    ), growth AS (
      SELECT g.organization_id, g.subject, {_all_known("f_start", "SUM(g.f_start)")} AS f_start,
        {_all_known("f_end", "SUM(g.f_end)")} AS f_end,
        {_all_known("f_end", "MIN(g.f_date)")} AS f_date,
        {_all_known("growth", "SUM(g.growth)")} AS growth, COUNT(g.growth) AS with_growth
      FROM g GROUP BY g.organization_id, g.subject
    ), items AS (
      SELECT c.organization_id, c.integration_id, c.external_content_id,
        SUM(c.engagements) AS engagements, MIN(k.subject) AS subject
      FROM content_performance_daily c
      JOIN (SELECT DISTINCT integration_id, subject FROM p) k
        ON k.integration_id = c.integration_id
      WHERE c.metric_date BETWEEN :first AND :last AND c.engagements IS NOT NULL
      GROUP BY c.organization_id, c.integration_id, c.external_content_id
    ), top AS (
      SELECT i.* FROM items i WHERE NOT EXISTS (
        SELECT 1 FROM items o WHERE o.organization_id = i.organization_id
          AND o.subject = i.subject
          AND (o.engagements > i.engagements
            OR (o.engagements = i.engagements AND (o.integration_id < i.integration_id
              OR (o.integration_id = i.integration_id
                AND o.external_content_id < i.external_content_id)))))
    )
    SELECT s.organization_id, '{scope}', s.subject, totals.platform, totals.integrations,
      s.days, totals.published, totals.new_followers,
      {", ".join(f"s.c{n}" for n in range(1, 16))},
      CASE WHEN totals.r > 0 THEN CAST(totals.e AS FLOAT) / totals.r END,
      growth.f_start, growth.f_end, growth.f_date AS f_date, growth.growth, growth.with_growth,
      top.integration_id, top.external_content_id, top.engagements
    FROM stats s
    JOIN totals ON totals.organization_id = s.organization_id AND totals.subject = s.subject
    JOIN growth ON growth.organization_id = s.organization_id AND growth.subject = s.subject
    LEFT JOIN top ON top.organization_id = s.organization_id AND top.subject = s.subject
    """


def _independent(engine: sa.Engine, first: dt.date, last: dt.date) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for scope in SUBJECT:
        rows += query_rows(
            engine,
            _rollup_sql(scope),
            dates=("f_date",),
            first=first,
            last=last,
            before=first - dt.timedelta(days=1),
        )
    return sorted(rows, key=repr)


def _stored(engine: sa.Engine, grain: str, start: dt.date) -> list[tuple[Any, ...]]:
    kr = t.kpi_rollups
    with engine.connect() as conn:
        query = sa.select(*(kr.c[c] for c in COLUMNS)).where(
            kr.c.period_grain == grain, kr.c.period_start == start
        )
        return sorted((tuple(row) for row in conn.execute(query)), key=repr)


@pytest.fixture
def computed(engine: sa.Engine) -> sa.Engine:
    return seed_with_daily_kpis(engine, [BEFORE, DAY])


@pytest.mark.parametrize(
    ("grain", "start", "end"),
    [
        ("week", DAY, DAY + dt.timedelta(days=6)),  # Monday 2 March: growth from 1 March
        ("week", BEFORE - dt.timedelta(days=6), BEFORE),  # ends on Sunday 1 March
        ("month", BEFORE, dt.date(2026, 3, 31)),  # both days: min, max and averages differ
    ],
)
def test_rollups_equal_independent_sql(
    computed: sa.Engine, grain: str, start: dt.date, end: dt.date
) -> None:
    with computed.begin() as conn:
        refresh_period(conn, grain, start, NOW)
    stored = _stored(computed, grain, start)
    expected = _independent(computed, start, end)
    assert len(stored) == 10  # 4 integrations, 2 organizations, 4 platforms
    assert_same(stored, expected)
