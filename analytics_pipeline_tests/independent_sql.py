"""Shared set-up of the independent SQL recomputation tests (test_kpis_independent_sql.py,
test_kpi_rollups_independent_sql.py): the seeded warehouse with its daily KPIs computed, a text
query with typed parameters, and the row comparison (floats approximately, the rest exactly)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pytest
import sqlalchemy as sa

from analytics_pipeline.warehouse import tables as t
from analytics_pipeline.warehouse.kpis import refresh_day
from analytics_pipeline_tests.kpi_data import seed

NOW = dt.datetime(2026, 3, 3, 2, 0, tzinfo=dt.UTC)


def seed_with_daily_kpis(engine: sa.Engine, days: Iterable[dt.date]) -> sa.Engine:
    """The KPI test warehouse (kpi_data.seed) with both daily KPI tables computed for `days`."""
    seed(engine)
    for day in days:
        with engine.begin() as conn:
            refresh_day(conn, day, NOW)
    return engine


def _bound(name: str, value: Any) -> sa.BindParameter[Any]:
    if isinstance(value, dt.datetime):
        return sa.bindparam(name, value, type_=t.UTCDateTime())
    if isinstance(value, dt.date):
        return sa.bindparam(name, value, type_=sa.Date())
    return sa.bindparam(name, value)


def query_rows(
    engine: sa.Engine, sql: str, dates: Iterable[str] = (), **params: Any
) -> list[tuple[Any, ...]]:
    """The rows of `sql` (sorted), with `params` bound by type; `dates` names result columns
    read back as dates (SQLite returns text)."""
    query = sa.text(sql).bindparams(*(_bound(name, value) for name, value in params.items()))
    if dates:
        query = query.columns(**{name: sa.Date() for name in dates})  # type: ignore[assignment]
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(query))


def same_rows(stored: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Equal row by row: floats approximately, everything else exactly (None included)."""
    assert len(stored) == len(expected) and stored
    for got, want in zip(stored, expected, strict=True):
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            if isinstance(a, float) or isinstance(b, float):
                assert a == pytest.approx(b), (got, want)
            else:
                assert a == b, (got, want)
