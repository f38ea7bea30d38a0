"""`social_media_report` on SQLite and PostgreSQL: the documented latest totals per platform,
idempotent refreshes in any day order, the same numbers as an independent SQL recomputation, and
the Dagster asset in the KPI job with a check that fails on a violating row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline.records import ContentFormat, ContentItem, ContentMetrics
from analytics_pipeline.warehouse import (
    make_engine,
    migrate,
    upsert_content_items,
    upsert_content_metrics,
)
from analytics_pipeline.warehouse import tables as t
from analytics_pipeline.warehouse.kpis import refresh_day
from analytics_pipeline.warehouse.social_report import refresh_report_day
from analytics_pipeline_tests.independent_sql import (
    NOW,
    assert_same,
    engagement_columns,
    independent,
    stored,
)
from analytics_pipeline_tests.kpi_data import BEFORE, DAILY, DAY, LIFETIME, OBSERVED, at, seed

AFTER = DAY + dt.timedelta(days=1)
CAPTION = "Summer launch! " * 20  # 300 characters
report = t.social_media_report


def seed_report(engine: sa.Engine) -> None:
    """kpi_data plus what the report is about: a caption, hashtags and a permalink, an account
    name, an older LinkedIn day to sum (with an unreported comment count) and an X snapshot
    newer than DAY."""
    seed(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.update(t.tracked_integrations)
            .where(t.tracked_integrations.c.integration_id == "fb-1")
            .values(display_name="Acme on Facebook")
        )
        p1 = ContentItem(
            "p1",
            ContentFormat.POST,
            at(BEFORE, 10),
            caption=CAPTION,
            hashtags=("launch", "summer"),
            permalink="https://www.facebook.com/1/posts/p1",
        )
        ids = {"organization_id": "org-a", "integration_id": "fb-1"}
        upsert_content_items(conn, **ids, platform="facebook", items=[p1], now=OBSERVED)
        u1 = ContentMetrics(
            "u1", DAILY, likes=2, shares=0, clicks=1, impressions=100, reach=80, views=None
        )
        li = {"organization_id": "org-b", "integration_id": "li-1"}
        earlier = DAY - dt.timedelta(days=3)
        upsert_content_metrics(conn, **li, metric_date=earlier, metrics=[u1], observed_at=OBSERVED)
        t1 = ContentMetrics(
            "t1", LIFETIME, likes=10, comments=2, shares=3, saves=1, impressions=1000
        )
        x = {"organization_id": "org-b", "integration_id": "x-1"}
        upsert_content_metrics(conn, **x, metric_date=AFTER, metrics=[t1], observed_at=OBSERVED)


@pytest.fixture
def reported(engine: sa.Engine) -> sa.Engine:
    seed_report(engine)
    with engine.begin() as conn:
        refresh_report_day(conn, DAY, NOW)
    return engine


def _rows(engine: sa.Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {
            row["external_content_id"]: dict(row)
            for row in conn.execute(sa.select(report)).mappings()
        }


def test_the_report_holds_each_items_latest_totals(reported: sa.Engine) -> None:
    rows = _rows(reported)
    assert set(rows) == {"p1", "p2", "m1", "m2", "m3", "u1", "u2", "t1"}  # seen on DAY
    p1 = rows["p1"]  # facebook: the newest snapshot; shares never reported
    assert (p1["totals_basis"], p1["as_of_date"], p1["days_summed"]) == (
        "latest_snapshot",
        DAY,
        None,
    )
    assert (p1["reactions"], p1["comments"], p1["shares"], p1["clicks"]) == (15, 3, None, 9)
    assert (p1["engagements"], p1["engagement_inputs_known"]) == (27, 3)
    assert p1["engagement_rate_on_reach"] == pytest.approx(27 / 160)
    assert p1["engagement_rate_on_impressions"] is None  # impressions unknown
    assert p1["caption_excerpt"] == CAPTION[:200] and p1["hashtags"] == ["launch", "summer"]
    assert p1["permalink"].endswith("/p1") and p1["account_name"] == "Acme on Facebook"
    assert p1["published_at"] == at(BEFORE, 10) and p1["format"] == "POST"
    u1 = rows["u1"]  # linkedin: two daily rows summed; comments reported on one day only
    assert (u1["totals_basis"], u1["days_summed"], u1["as_of_date"]) == ("sum_of_daily", 2, DAY)
    assert (u1["likes"], u1["comments"], u1["shares"], u1["clicks"]) == (5, 1, 0, 7)
    assert (u1["impressions"], u1["reach"], u1["engagements"]) == (500, None, 13)
    assert u1["engagement_rate_on_impressions"] == pytest.approx(13 / 500)
    assert u1["engagement_rate_on_reach"] is None and u1["account_name"] is None
    u2 = rows["u2"]  # zeros reported: 0 engagements, no rate on a zero denominator
    assert (u2["engagements"], u2["engagement_rate_on_impressions"]) == (0, None)
    t1 = rows["t1"]  # x: a snapshot newer than the refreshed day is the latest
    assert (t1["as_of_date"], t1["impressions"], t1["engagements"]) == (AFTER, 1000, 16)
    m3 = rows["m3"]  # instagram insights not ready: unknown, never 0
    assert (m3["engagements"], m3["engagement_inputs_known"], m3["likes"]) == (None, 0, None)
    assert m3["engagement_inputs_expected"] == 4 and m3["caption_excerpt"] is None


def test_refreshes_are_idempotent_in_any_day_order(reported: sa.Engine) -> None:
    first = _rows(reported)
    later = NOW + dt.timedelta(hours=5)
    with reported.begin() as conn:
        again = refresh_report_day(conn, DAY, later)
        older = refresh_report_day(conn, BEFORE, later)  # p1, m1, t1: already latest
    assert again.counts.unchanged == 8 and again.counts.written == 0
    assert older.counts.unchanged == 3 and older.counts.written == 0
    assert _rows(reported) == first  # computed_at kept: nothing was rewritten


def _report_sql() -> str:
    """Items seen on :day, their newest row, the sums of their daily rows; then the same
    engagement and rate definitions as content_performance_daily."""
    metrics = ("impressions", "reach", "views", "reactions", "likes", "comments")
    metrics += ("shares", "clicks", "saves")
    sums = ", ".join(f"SUM({n}) AS {n}" for n in metrics)
    totals = ", ".join(
        f"CASE WHEN l.value_kind = 'daily' THEN {'NULL' if n == 'reach' else 's.' + n} "
        f"ELSE l.{n} END AS {n}"
        for n in metrics
    )
    return f"""
    WITH seen AS (
      SELECT m.organization_id, m.integration_id, m.external_content_id,
        (SELECT MAX(x.metric_date) FROM content_metrics_daily x
          WHERE x.organization_id = m.organization_id AND x.integration_id = m.integration_id
          AND x.external_content_id = m.external_content_id) AS as_of
      FROM content_metrics_daily m WHERE m.metric_date = :day
    ), s AS (
      SELECT organization_id, integration_id, external_content_id, COUNT(*) AS days, {sums}
      FROM content_metrics_daily WHERE value_kind = 'daily'
      GROUP BY organization_id, integration_id, external_content_id
    ), d AS (
      SELECT seen.organization_id, seen.integration_id, seen.external_content_id, i.platform,
        seen.as_of, CASE WHEN l.value_kind = 'daily' THEN s.days END AS days, {totals},
        SUBSTR(i.caption, 1, 200) AS excerpt, i.permalink,
        CASE WHEN ti.display_name <> ti.integration_id THEN ti.display_name END AS account
      FROM seen
      JOIN content_items i ON i.organization_id = seen.organization_id
        AND i.integration_id = seen.integration_id
        AND i.external_content_id = seen.external_content_id
      JOIN content_metrics_daily l ON l.organization_id = seen.organization_id
        AND l.integration_id = seen.integration_id
        AND l.external_content_id = seen.external_content_id AND l.metric_date = seen.as_of
      LEFT JOIN s ON s.organization_id = seen.organization_id
        AND s.integration_id = seen.integration_id
        AND s.external_content_id = seen.external_content_id
      LEFT JOIN tracked_integrations ti ON ti.organization_id = seen.organization_id
        AND ti.integration_id = seen.integration_id
    ), e AS (SELECT d.*, {engagement_columns()} FROM d)
    SELECT organization_id, integration_id, external_content_id, platform, as_of, days,
      {", ".join(metrics)}, engagements, known,
      CASE WHEN reach > 0 THEN CAST(engagements AS FLOAT) / reach END,
      CASE WHEN impressions > 0 THEN CAST(engagements AS FLOAT) / impressions END,
      excerpt, permalink, account
    FROM e
    """


def test_the_report_equals_an_independent_sql_recomputation(reported: sa.Engine) -> None:
    columns = ["organization_id", "integration_id", "external_content_id", "platform"]
    columns += ["as_of_date", "days_summed", "impressions", "reach", "views", "reactions"]
    columns += ["likes", "comments", "shares", "clicks", "saves", "engagements"]
    columns += ["engagement_inputs_known", "engagement_rate_on_reach"]
    columns += ["engagement_rate_on_impressions", "caption_excerpt", "permalink", "account_name"]
    rows = stored(reported, report, columns, where=sa.true())
    assert_same(rows, independent(reported, _report_sql()))


# --- in Dagster -----------------------------------------------------------------------------


@pytest.fixture
def warehouse(tmp_path: Path) -> tuple[str, sa.Engine]:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    seed_report(engine)
    return url, engine


def test_the_kpi_job_refreshes_the_report_with_the_daily_kpis(
    warehouse: tuple[str, sa.Engine],
) -> None:
    from analytics_pipeline.definitions import defs
    from analytics_pipeline.defs.assets import CONTENT_DAILY_METRICS
    from analytics_pipeline.defs.report_assets import REPORT_CHECK, SOCIAL_MEDIA_REPORT

    url, _ = warehouse
    with dg.instance_for_test() as instance:
        job = defs().resolve_job_def("kpi_job")
        result = job.execute_in_process(
            instance=instance,
            partition_key=DAY.isoformat(),
            resources={"warehouse": _resource(url)},
        )
    assert result.success
    order = [e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
    assert sorted(order) == ["kpi_daily", "social_media_report"]
    [report_event] = result.asset_materializations_for_node("social_media_report")
    metadata = report_event.metadata
    assert (
        report_event.partition == DAY.isoformat() and report_event.asset_key == SOCIAL_MEDIA_REPORT
    )
    assert metadata["dagster/row_count"].value == 8 and metadata["table_rows"].value == 8
    assert metadata["engagements"].value == 27 + 7 + 115 + 47 + 13 + 0 + 16
    assert "| facebook | fb-1 | p1 | POST | 27 |" in metadata["top_content"].value
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[REPORT_CHECK].passed and len(checks) == 6
    graph = defs().resolve_asset_graph()
    node = graph.get(SOCIAL_MEDIA_REPORT)
    assert CONTENT_DAILY_METRICS in node.parent_keys
    assert node.group_name == "kpis" and node.owners and node.kinds >= {"pandas"}
    schema = node.metadata["dagster/column_schema"]
    assert {c.name for c in schema.columns} == set(report.c.keys())


def _resource(url: str) -> Any:
    from analytics_pipeline.defs.resources import WarehouseResource

    return WarehouseResource(url=url)


@pytest.mark.parametrize(
    "violation",
    [
        sa.update(report).where(report.c.external_content_id == "p1").values(engagements=-3),
        sa.update(report).where(report.c.external_content_id == "u1").values(days_summed=None),
        sa.update(report).where(report.c.external_content_id == "m1").values(as_of_date=BEFORE),
        sa.delete(report).where(report.c.external_content_id == "p2"),
    ],
    ids=["negative", "basis", "stale", "missing"],
)
def test_the_report_check_fails_on_a_violating_row(reported: sa.Engine, violation: Any) -> None:
    from analytics_pipeline.defs.report_assets import report_check

    assert report_check(reported, [DAY]).passed
    with reported.begin() as conn:
        conn.execute(violation)
    failed = report_check(reported, [DAY])
    assert not failed.passed and failed.metadata["violations"].value == 1


def test_refresh_day_and_report_agree_on_the_items_of_a_day(reported: sa.Engine) -> None:
    """The report covers exactly the items content_performance_daily has on the day."""
    with reported.begin() as conn:
        kpis = refresh_day(conn, DAY, NOW)
    assert set(kpis.content_rows["external_content_id"]) == set(_rows(reported))
