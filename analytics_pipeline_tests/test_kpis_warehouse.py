"""KPI tables computed from a small warehouse, on SQLite and PostgreSQL: the documented values
row by row, idempotent re-runs, and stale rows removed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from analytics_pipeline.warehouse import tables as t
from analytics_pipeline.warehouse.kpis import refresh_day
from analytics_pipeline_tests.kpi_data import BEFORE, DAY, seed

NOW = dt.datetime(2026, 3, 3, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def seeded(engine: sa.Engine) -> sa.Engine:
    seed(engine)
    return engine


def _rows(engine: sa.Engine, table: sa.Table, key: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.metric_date == DAY)).mappings()
        return {row[key]: dict(row) for row in rows}


def test_content_performance_follows_the_documented_rules(seeded: sa.Engine) -> None:
    with seeded.begin() as conn:
        refresh_day(conn, DAY, NOW)
    rows = _rows(seeded, t.content_performance_daily, "external_content_id")
    assert set(rows) == {"p1", "p2", "m1", "m2", "m3", "u1", "u2", "t1"}
    # facebook: reactions + comments + shares + clicks, per-day differences; shares unknown
    p1 = rows["p1"]
    assert (p1["engagements"], p1["engagement_inputs_known"], p1["engagement_inputs_expected"]) == (
        10,
        3,
        4,
    )
    assert (p1["reach"], p1["views"], p1["impressions"]) == (60, 90, None)
    assert p1["engagement_rate_on_reach"] == pytest.approx(10 / 60)
    assert p1["engagement_rate_on_impressions"] is None
    assert p1["platform"] == "facebook" and p1["format"] == "POST"
    # published that day: the first snapshot is the day's change
    assert (rows["p2"]["engagements"], rows["p2"]["reach"]) == (7, 50)
    assert rows["p2"]["engagement_inputs_known"] == 4
    # instagram: a decreased counter is kept as observed and flagged
    m1 = rows["m1"]
    assert m1["engagements"] == -10 + 2 + 0 + 1 and m1["counter_decreased"] is True
    # a gap day (no snapshot before, published earlier): unknown, never 0
    m2 = rows["m2"]
    assert (m2["engagements"], m2["engagement_inputs_known"], m2["reach"]) == (None, 0, None)
    assert m2["engagement_rate_on_reach"] is None
    assert rows["m3"]["engagements"] is None and rows["m3"]["counter_decreased"] is False
    # linkedin daily values; a zero denominator gives NULL rates, a zero count stays 0
    assert rows["u1"]["engagements"] == 10
    assert rows["u1"]["engagement_rate_on_impressions"] == pytest.approx(10 / 400)
    u2 = rows["u2"]
    assert (u2["engagements"], u2["engagement_rate_on_reach"]) == (0, None)
    assert u2["engagement_rate_on_impressions"] is None
    # x: clicks unknown (app-only token): 4 of 5 inputs
    t1 = rows["t1"]
    assert (t1["engagements"], t1["engagement_inputs_known"], t1["impressions"]) == (5, 4, 400)
    assert t1["engagement_rate_on_impressions"] == pytest.approx(5 / 400)


def test_account_kpis_follow_the_documented_rules(seeded: sa.Engine) -> None:
    with seeded.begin() as conn:
        refresh_day(conn, DAY, NOW)
    rows = _rows(seeded, t.account_kpis_daily, "integration_id")
    assert set(rows) == {"fb-1", "ig-1", "li-1", "x-1"}  # fb-idle has nothing that day
    fb = rows["fb-1"]
    assert (fb["followers_total"], fb["follower_growth"], fb["new_followers"]) == (1010, 10, None)
    assert (fb["items_published"], fb["items_measured"], fb["items_with_engagements"]) == (1, 2, 2)
    assert fb["engagements"] == 17 and fb["engagement_rate"] == pytest.approx(17 / 5000)
    ig = rows["ig-1"]
    assert (ig["followers_total"], ig["follower_growth"], ig["new_followers"]) == (2000, None, 12)
    assert (ig["engagements"], ig["items_with_engagements"], ig["items_measured"]) == (-7, 1, 3)
    assert ig["engagement_rate"] is None  # reach 0
    li = rows["li-1"]
    assert (li["followers_total"], li["follower_growth"], li["impressions"]) == (None, None, 1200)
    assert (li["engagements"], li["engagement_rate"], li["reach"]) == (10, None, None)
    x = rows["x-1"]
    assert (x["followers_total"], x["follower_growth"], x["items_published"]) == (None, None, 0)
    assert x["engagements"] == 5


def test_refreshing_a_day_again_writes_nothing_and_removes_stale_rows(seeded: sa.Engine) -> None:
    with seeded.begin() as conn:
        first = refresh_day(conn, DAY, NOW)
    assert first.content_counts.inserted == 8 and first.account_counts.inserted == 4
    with seeded.begin() as conn:
        again = refresh_day(conn, DAY, NOW + dt.timedelta(hours=1))
    assert again.content_counts.written == 0 and again.content_counts.unchanged == 8
    assert again.account_counts.written == 0 and again.account_counts.unchanged == 4
    with seeded.begin() as conn:
        conn.execute(
            sa.delete(t.content_metrics_daily).where(
                t.content_metrics_daily.c.external_content_id == "t1"
            )
        )
        refresh_day(conn, DAY, NOW)
    assert "t1" not in _rows(seeded, t.content_performance_daily, "external_content_id")
    assert "x-1" not in _rows(seeded, t.account_kpis_daily, "integration_id")


def test_a_day_without_any_input_is_empty(seeded: sa.Engine) -> None:
    with seeded.begin() as conn:
        result = refresh_day(conn, BEFORE - dt.timedelta(days=30), NOW)
    assert len(result.content_rows) == 0 and len(result.account_rows) == 0


@pytest.mark.parametrize("day", [BEFORE, DAY])
def test_the_read_path_changes_equal_the_change_view(seeded: sa.Engine, day: dt.date) -> None:
    """read_content_day + day_changes (what the KPIs use) give the view's values row by row."""
    from analytics_pipeline.kpis.content import day_changes
    from analytics_pipeline.records import METRIC_FIELDS
    from analytics_pipeline.warehouse.kpis import read_content_day

    view = t.content_metrics_daily_change
    columns = [f"{name}_on_day" for name in METRIC_FIELDS]
    with seeded.connect() as conn:
        inputs = read_content_day(conn, day)
        stored = conn.execute(
            sa.select(
                view.c.external_content_id, *(view.c[c] for c in columns), view.c.counter_decreased
            ).where(view.c.metric_date == day)
        ).all()
    changes = day_changes(inputs)
    ours = {
        item: (*(None if v != v else int(v) for v in row[:-1]), bool(row[-1]))
        for item, row in zip(
            inputs["external_content_id"],
            changes[[*columns, "counter_decreased"]].itertuples(index=False, name=None),
            strict=True,
        )
    }
    expected = {row[0]: (*row[1:-1], bool(row[-1])) for row in stored}
    assert ours == expected and len(expected) >= 3
    assert any(decreased for *_, decreased in ours.values()) == (day == DAY)
