"""The set-up of the independent SQL recomputations of the KPI tables (test_kpis_independent_sql,
test_kpi_rollups_independent_sql, test_social_media_report): the seeded warehouse with its daily
KPIs computed, the engagement definitions written out again in SQL, and running and comparing the
recomputation with what the pipeline stored, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import sqlalchemy as sa

from analytics_pipeline.warehouse import tables as t
from analytics_pipeline.warehouse.kpis import refresh_day
from analytics_pipeline_tests.kpi_data import DAY, seed

NOW = dt.datetime(2026, 3, 3, 2, 0, tzinfo=dt.UTC)


def seed_with_daily_kpis(engine: sa.Engine, days: Iterable[dt.date]) -> sa.Engine:
    """The KPI test warehouse (kpi_data.seed) with both daily KPI tables computed for `days`."""
    seed(engine)
    for day in days:
        with engine.begin() as conn:
            refresh_day(conn, day, NOW)
    return engine


# Written out again here on purpose (not imported from kpis.definitions).
INPUTS = {
    "facebook": ("reactions", "comments", "shares", "clicks"),
    "instagram": ("likes", "comments", "shares", "saves"),
    "linkedin": ("likes", "comments", "shares", "clicks"),
    "x": ("likes", "comments", "shares", "saves", "clicks"),
}


def by_platform(expression: Callable[[tuple[str, ...]], str]) -> str:
    """A CASE on `d.platform` of `expression(the platform's engagement inputs)`."""
    cases = " ".join(
        f"WHEN d.platform = '{platform}' THEN {expression(names)}"
        for platform, names in INPUTS.items()
    )
    return f"CASE {cases} END"


def known(names: tuple[str, ...]) -> str:
    """How many of the `d.` columns `names` are not NULL."""
    return " + ".join(f"(CASE WHEN d.{n} IS NULL THEN 0 ELSE 1 END)" for n in names)


def total(names: tuple[str, ...]) -> str:
    """The sum of the `d.` columns `names`, NULL counting as 0."""
    return " + ".join(f"COALESCE(d.{n}, 0)" for n in names)


def engagement_columns() -> str:
    """`known` and `engagements` of each `d` row: NULL engagements when no input is known."""
    return (
        f"{by_platform(known)} AS known, "
        f"CASE WHEN {by_platform(known)} > 0 THEN {by_platform(total)} END AS engagements"
    )


def _bound(name: str, value: Any) -> sa.BindParameter[Any]:
    if isinstance(value, dt.datetime):
        return sa.bindparam(name, value, type_=t.UTCDateTime())
    if isinstance(value, dt.date):
        return sa.bindparam(name, value, type_=sa.Date())
    return sa.bindparam(name, value)


def query_rows(
    engine: sa.Engine, sql: str, dates: Iterable[str] = (), **params: Any
) -> list[tuple[Any, ...]]:
    """The rows of `sql` (sorted), with those of `params` it uses bound by type; `dates` names
    result columns read back as dates (SQLite returns text)."""
    used = (_bound(name, value) for name, value in params.items() if f":{name}" in sql)
    query = sa.text(sql).bindparams(*used)
    if dates:
        query = query.columns(**{name: sa.Date() for name in dates})  # type: ignore[assignment]
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(query))


def independent(engine: sa.Engine, sql: str, day: dt.date = DAY) -> list[tuple[Any, ...]]:
    """The rows of `sql`, sorted, with :start/:end (the UTC day), :day and :before bound."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return query_rows(
        engine,
        sql,
        start=start,
        end=start + dt.timedelta(days=1),
        day=day,
        before=day - dt.timedelta(days=1),
    )


def stored(
    engine: sa.Engine, table: sa.Table, columns: list[str], where: Any = None
) -> list[tuple[Any, ...]]:
    """The stored rows of `table` (`where`, default: metric_date = DAY), sorted."""
    condition = table.c.metric_date == DAY if where is None else where
    with engine.connect() as conn:
        query = sa.select(*(table.c[c] for c in columns)).where(condition)
        return sorted(tuple(row) for row in conn.execute(query))


def assert_same(got_rows: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Equal row by row (floats approximately, dates as ISO text: SQLite's MAX of a date is
    text); neither empty."""
    assert len(got_rows) == len(expected) and got_rows
    for got, want in zip(got_rows, expected, strict=True):
        assert len(got) == len(want)
        for a, b in zip(map(_plain, got), map(_plain, want), strict=True):
            if isinstance(a, float) or isinstance(b, float):
                assert a == pytest.approx(b), (got, want)
            else:
                assert a == b, (got, want)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value
