"""Reads of a day's KPI inputs and idempotent writes of the KPI tables (see kpis/).

The reads return DataFrames in the column order `analytics_pipeline.kpis` expects; the writes go
through bulk.py's upsert (rows identical to what is stored are not rewritten, counts are exact)
in the caller's transaction: one UTC day of every integration is one transaction.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from analytics_pipeline.kpis import account, content
from analytics_pipeline.records import METRIC_FIELDS, ValueKind
from analytics_pipeline.warehouse._sql import require_aware, require_date
from analytics_pipeline.warehouse.bulk import UpsertCounts, UpsertSpec, bulk_upsert
from analytics_pipeline.warehouse.tables import (
    ACCOUNT_KPIS_KEY,
    CONTENT_KEY,
    CONTENT_PERFORMANCE_KEY,
    account_kpis_daily,
    account_metrics_daily,
    content_items,
    content_metrics_daily,
    content_performance_daily,
    tracked_integrations,
)

_CONTENT_VALUES = tuple(c for c in content.OUTPUT_COLUMNS if c not in CONTENT_PERFORMANCE_KEY)
_ACCOUNT_VALUES = tuple(c for c in account.OUTPUT_COLUMNS if c not in ACCOUNT_KPIS_KEY)
_CONTENT_SPEC = UpsertSpec(
    content_performance_daily,
    CONTENT_PERFORMANCE_KEY,
    compared=_CONTENT_VALUES,
    touched=("computed_at",),
)
_ACCOUNT_SPEC = UpsertSpec(
    account_kpis_daily, ACCOUNT_KPIS_KEY, compared=_ACCOUNT_VALUES, touched=("computed_at",)
)


def read_content_day(conn: sa.Connection, day: dt.date) -> pd.DataFrame:
    """Every content_metrics_daily row of `day` that has its content item, with the item's
    columns and the same item's 'lifetime_snapshot' row of the day before
    (`content.INPUT_COLUMNS`; `content.day_changes` turns them into the change view's values).

    Built for ~100,000 rows: `metric_date` is the constant `day` (not read per row), and
    `published_at` is read as a plain timestamp and converted to UTC by pandas in one call
    (UTCDateTime's per-value conversion cost more than the rest of the frame)."""
    day = require_date("day", day)
    m, item, before = content_metrics_daily, content_items, content_metrics_daily.alias("before")
    query = (
        sa.select(
            *(m.c[name] for name in CONTENT_KEY),
            item.c.platform,
            item.c.format,
            sa.type_coerce(item.c.published_at, sa.DateTime(timezone=True)),
            m.c.value_kind,
            *(m.c[name] for name in METRIC_FIELDS),
            *(before.c[name] for name in METRIC_FIELDS),
        )
        .join(item, same_item(m, item))
        .outerjoin(
            before,
            sa.and_(
                same_item(m, before),
                before.c.metric_date == day - dt.timedelta(days=1),
                before.c.value_kind == ValueKind.LIFETIME_SNAPSHOT.value,
            ),
        )
        .where(m.c.metric_date == day)
        .order_by(*(m.c[name] for name in CONTENT_KEY))
    )
    columns = [name for name in content.INPUT_COLUMNS if name != "metric_date"]
    frame = numeric_frame(conn.execute(query).all(), columns, content.NUMERIC_INPUTS)
    frame.insert(columns.index("external_content_id") + 1, "metric_date", day)
    frame["published_at"] = pd.to_datetime(frame["published_at"], utc=True)
    return frame


def numeric_frame(
    rows: Sequence[Sequence[Any]], columns: Sequence[str], numeric: Collection[str]
) -> pd.DataFrame:
    """A frame of `rows`, built column by column: the `numeric` columns as float64 arrays (NaN
    for NULL) in one numpy call each, instead of pandas inferring a type from Python objects."""
    values = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return pd.DataFrame(
        {
            name: np.array(column, dtype="float64") if name in numeric else list(column)
            for name, column in zip(columns, values, strict=True)
        }
    )


def same_item(left: sa.FromClause, right: sa.FromClause) -> sa.ColumnElement[bool]:
    return sa.and_(
        *(
            left.c[name] == right.c[name]
            for name in ("organization_id", "integration_id", "external_content_id")
        )
    )


def read_account_day(conn: sa.Connection, day: dt.date) -> pd.DataFrame:
    """One row per tracked integration: its account values of `day`, the followers snapshot of
    the day before and the items it published on `day` (`account.INPUT_COLUMNS`)."""
    day = require_date("day", day)
    ti, today = tracked_integrations, account_metrics_daily.alias("today")
    before = account_metrics_daily.alias("before")
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    published = (
        sa.select(sa.func.count())
        .where(
            content_items.c.organization_id == ti.c.organization_id,
            content_items.c.integration_id == ti.c.integration_id,
            content_items.c.published_at >= start,
            content_items.c.published_at < start + dt.timedelta(days=1),
        )
        .scalar_subquery()
    )
    query = (
        sa.select(
            ti.c.organization_id,
            ti.c.integration_id,
            ti.c.platform,
            today.c.integration_id.is_not(None),
            today.c.followers_total,
            before.c.followers_total,
            today.c.new_followers,
            today.c.reach,
            today.c.impressions,
            published,
        )
        .outerjoin(today, _account_day(ti, today, day))
        .outerjoin(before, _account_day(ti, before, day - dt.timedelta(days=1)))
        .order_by(ti.c.organization_id, ti.c.integration_id)
    )
    rows = conn.execute(query).all()
    return pd.DataFrame([tuple(row) for row in rows], columns=list(account.INPUT_COLUMNS))


def _account_day(ti: sa.Table, metrics: Any, day: dt.date) -> sa.ColumnElement[bool]:
    return sa.and_(
        metrics.c.organization_id == ti.c.organization_id,
        metrics.c.integration_id == ti.c.integration_id,
        metrics.c.metric_date == day,
    )


def write_content_performance(
    conn: sa.Connection, day: dt.date, rows: pd.DataFrame, computed_at: dt.datetime
) -> UpsertCounts:
    """Upsert the day's `content_performance_daily` rows (one call per integration)."""
    day, computed_at = require_date("day", day), require_aware("computed_at", computed_at)
    columns = ("external_content_id", *_CONTENT_VALUES)
    shared = {"metric_date": day, "computed_at": computed_at}
    return upsert_groups(
        conn, _CONTENT_SPEC, rows, ("organization_id", "integration_id"), columns, shared
    )


def write_account_kpis(
    conn: sa.Connection, day: dt.date, rows: pd.DataFrame, computed_at: dt.datetime
) -> UpsertCounts:
    """Upsert the day's `account_kpis_daily` rows (one call per organization)."""
    day, computed_at = require_date("day", day), require_aware("computed_at", computed_at)
    columns = ("integration_id", *_ACCOUNT_VALUES)
    shared = {"metric_date": day, "computed_at": computed_at}
    return upsert_groups(conn, _ACCOUNT_SPEC, rows, ("organization_id",), columns, shared)


def upsert_groups(
    conn: sa.Connection,
    spec: UpsertSpec,
    rows: pd.DataFrame,
    by: Sequence[str],
    columns: Sequence[str],
    shared: dict[str, Any],
) -> UpsertCounts:
    """Upsert `rows` with one `bulk_upsert` call per group of the `by` columns (sent once per
    call with the `shared` values), the rows' `columns` varying."""
    counts = UpsertCounts()
    for key, values in grouped_rows(rows, by, columns):
        group = {**shared, **dict(zip(by, key, strict=True))}
        counts += bulk_upsert(conn, spec, shared=group, columns=columns, rows=values)
    return counts


def grouped_rows(
    frame: pd.DataFrame, by: Sequence[str], columns: Sequence[str]
) -> list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """The frame's rows as plain tuples of `columns`, grouped by the `by` columns, each group's
    rows sorted by `columns[0]` (the varying key), groups in key order. Converted once for the
    whole frame: per-group pandas calls would cost more than the upserts for 1,000 groups."""
    if frame.empty:
        return []
    ordered = frame.sort_values([*by, columns[0]])
    keys = list(zip(*(ordered[name].tolist() for name in by), strict=True))
    values = python_rows(ordered, columns)
    groups: list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]] = []
    for key, row in zip(keys, values, strict=True):
        if not groups or groups[-1][0] != key:
            groups.append((key, []))
        groups[-1][1].append(row)
    return groups


def python_rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The frame's rows as tuples of plain Python values (int, float, bool, str, aware
    datetime, None for unknown): bulk.py's fast paths expect exactly those types."""
    converted = [[_python(value) for value in frame[name].tolist()] for name in columns]
    return list(zip(*converted, strict=True))


def _python(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _python(value.item())
    return value


class DayKpis:
    """What `refresh_day` computed and wrote for one UTC day."""

    def __init__(
        self,
        content_rows: pd.DataFrame,
        account_rows: pd.DataFrame,
        content_counts: UpsertCounts,
        account_counts: UpsertCounts,
    ) -> None:
        self.content_rows = content_rows
        self.account_rows = account_rows
        self.content_counts = content_counts
        self.account_counts = account_counts


def refresh_day(conn: sa.Connection, day: dt.date, computed_at: dt.datetime) -> DayKpis:
    """Recompute both KPI tables for `day` (every integration) and upsert them, in the caller's
    transaction. Rows of the day whose input is gone are deleted, so the tables always equal a
    fresh computation."""
    content_rows = content.content_performance(read_content_day(conn, day), day)
    account_rows = account.account_kpis(read_account_day(conn, day), content_rows, day)
    _delete_stale(conn, content_performance_daily, day, content_rows, CONTENT_PERFORMANCE_KEY)
    _delete_stale(conn, account_kpis_daily, day, account_rows, ACCOUNT_KPIS_KEY)
    return DayKpis(
        content_rows,
        account_rows,
        write_content_performance(conn, day, content_rows, computed_at),
        write_account_kpis(conn, day, account_rows, computed_at),
    )


def _delete_stale(
    conn: sa.Connection, table: sa.Table, day: dt.date, rows: pd.DataFrame, key: Sequence[str]
) -> None:
    """Delete the day's stored rows whose key is not among `rows` (their input disappeared)."""
    others = [name for name in key if name != "metric_date"]
    stored = conn.execute(
        sa.select(*(table.c[name] for name in others)).where(table.c.metric_date == day)
    ).all()
    wanted = set(rows[others].itertuples(index=False, name=None)) if not rows.empty else set()
    stale = [tuple(row) for row in stored if tuple(row) not in wanted]
    for values in stale:
        conn.execute(
            sa.delete(table).where(
                table.c.metric_date == day,
                *(table.c[name] == value for name, value in zip(others, values, strict=True)),
            )
        )


def coverage_summary(conn: sa.Connection, first_day: dt.date, last_day: dt.date) -> dict[str, int]:
    """How complete the engagement inputs of the days' content rows were."""
    cpd = content_performance_daily
    known, expected = cpd.c.engagement_inputs_known, cpd.c.engagement_inputs_expected
    row = conn.execute(
        sa.select(
            sa.func.count(),
            sa.func.count().filter(known == expected),
            sa.func.count().filter(sa.and_(known > 0, known < expected)),
            sa.func.count().filter(known == 0),
        ).where(cpd.c.metric_date.between(first_day, last_day))
    ).one()
    return {
        "rows": int(row[0]),
        "rows_all_inputs_known": int(row[1]),
        "rows_some_inputs_known": int(row[2]),
        "rows_no_input_known": int(row[3]),
    }


def organization_exists(conn: sa.Connection, organization_id: str) -> bool:
    """Whether any tracked integration belongs to `organization_id`."""
    query = sa.select(tracked_integrations.c.integration_id).where(
        tracked_integrations.c.organization_id == organization_id
    )
    return conn.execute(query.limit(1)).first() is not None
