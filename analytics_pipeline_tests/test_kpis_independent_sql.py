"""Each KPI table recomputed from the BASE tables with independent SQL (a self-join of
content_metrics_daily, not the change view, and no pandas) finds the same numbers, on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from analytics_pipeline.records import METRIC_FIELDS
from analytics_pipeline.warehouse import tables as t
from analytics_pipeline_tests.independent_sql import (
    assert_same,
    engagement_columns,
    independent,
    seed_with_daily_kpis,
    stored,
)
from analytics_pipeline_tests.kpi_data import DAY


def _per_day(name: str) -> str:
    return (
        f"CASE WHEN c.value_kind = 'daily' THEN c.{name} "
        f"WHEN p.external_content_id IS NOT NULL THEN c.{name} - p.{name} "
        f"WHEN c.published_at >= :start AND c.published_at < :end THEN c.{name} END AS {name}"
    )


def _content_sql() -> str:
    per_day = ", ".join(_per_day(name) for name in METRIC_FIELDS)
    decreased = " OR ".join(f"c.{n} < p.{n}" for n in METRIC_FIELDS)
    return f"""
    WITH c AS (
      SELECT m.*, i.platform, i.format, i.published_at FROM content_metrics_daily m
      JOIN content_items i ON i.organization_id = m.organization_id
        AND i.integration_id = m.integration_id
        AND i.external_content_id = m.external_content_id
      WHERE m.metric_date = :day
    ), d AS (
      SELECT c.organization_id, c.integration_id, c.external_content_id, c.platform,
        CASE WHEN c.value_kind = 'lifetime_snapshot' AND ({decreased}) THEN 1 ELSE 0 END
          AS decreased,
        {per_day}
      FROM c LEFT JOIN content_metrics_daily p
        ON p.organization_id = c.organization_id AND p.integration_id = c.integration_id
        AND p.external_content_id = c.external_content_id AND p.metric_date = :before
        AND p.value_kind = 'lifetime_snapshot'
    ), e AS (
      SELECT d.*, {engagement_columns()} FROM d
    )
    SELECT organization_id, integration_id, external_content_id, engagements, known, reach,
      impressions, views, decreased,
      CASE WHEN reach > 0 THEN CAST(engagements AS FLOAT) / reach END AS rate_reach,
      CASE WHEN impressions > 0 THEN CAST(engagements AS FLOAT) / impressions END AS rate_impr
    FROM e
    """


def _account_sql(content_sql: str) -> str:
    return f"""
    WITH k AS ({content_sql}),
    s AS (
      SELECT organization_id, integration_id, COUNT(*) AS measured,
        COUNT(engagements) AS with_engagements, SUM(engagements) AS engagements
      FROM k GROUP BY organization_id, integration_id
    ), a AS (
      SELECT ti.organization_id, ti.integration_id,
        today.followers_total AS followers_total,
        today.followers_total - before.followers_total AS growth,
        today.new_followers AS new_followers, today.reach AS reach,
        today.impressions AS impressions, today.integration_id AS has_row,
        (SELECT COUNT(*) FROM content_items i WHERE i.organization_id = ti.organization_id
          AND i.integration_id = ti.integration_id
          AND i.published_at >= :start AND i.published_at < :end) AS published
      FROM tracked_integrations ti
      LEFT JOIN account_metrics_daily today ON today.organization_id = ti.organization_id
        AND today.integration_id = ti.integration_id AND today.metric_date = :day
      LEFT JOIN account_metrics_daily before ON before.organization_id = ti.organization_id
        AND before.integration_id = ti.integration_id AND before.metric_date = :before
    )
    SELECT a.organization_id, a.integration_id, a.followers_total, a.growth, a.new_followers,
      a.published, COALESCE(s.measured, 0) AS measured,
      COALESCE(s.with_engagements, 0) AS with_engagements, s.engagements, a.reach,
      a.impressions,
      CASE WHEN a.reach > 0 THEN CAST(s.engagements AS FLOAT) / a.reach END AS rate
    FROM a LEFT JOIN s ON s.organization_id = a.organization_id
      AND s.integration_id = a.integration_id
    WHERE a.has_row IS NOT NULL OR s.measured > 0 OR a.published > 0
    """


@pytest.fixture
def computed(engine: sa.Engine) -> sa.Engine:
    return seed_with_daily_kpis(engine, [DAY])


def test_content_performance_equals_independent_sql(computed: sa.Engine) -> None:
    rows = stored(
        computed,
        t.content_performance_daily,
        [
            "organization_id",
            "integration_id",
            "external_content_id",
            "engagements",
            "engagement_inputs_known",
            "reach",
            "impressions",
            "views",
            "counter_decreased",
            "engagement_rate_on_reach",
            "engagement_rate_on_impressions",
        ],
    )
    expected = [(*row[:8], bool(row[8]), *row[9:]) for row in independent(computed, _content_sql())]
    assert_same(rows, expected)


def test_account_kpis_equal_independent_sql(computed: sa.Engine) -> None:
    rows = stored(
        computed,
        t.account_kpis_daily,
        [
            "organization_id",
            "integration_id",
            "followers_total",
            "follower_growth",
            "new_followers",
            "items_published",
            "items_measured",
            "items_with_engagements",
            "engagements",
            "reach",
            "impressions",
            "engagement_rate",
        ],
    )
    assert_same(rows, independent(computed, _account_sql(_content_sql())))
