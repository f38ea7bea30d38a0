"""Idempotent writes of account-level daily metrics (`account_metrics_daily`).

Same approach as content.py (read the batch's stored rows, skip identical ones, write the rest in
one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <a value differs> RETURNING``, count exactly),
with one rule of its own for the followers snapshot:

`followers_total` is a SNAPSHOT of the total, which platforms can only tell for "now". A later
backfill of an old day (the other, per-day values can still be fetched then) arrives without it,
and must not erase the snapshot captured back then. So a NULL `followers_total` in the input
keeps the stored value, and `followers_observed_at` (when the stored snapshot was taken) changes
only when a different `followers_total` is written. The rule is in the SQL as well (COALESCE in
the ON CONFLICT update), so it holds even against a concurrent writer.

Every other metric is the platform's own value FOR that day: the latest observation replaces
the stored one, NULL included (NULL = the platform did not report it this time).
`observed_at` is when the stored values were first observed, as in content.py: re-upserting the
same values rewrites nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from analytics_pipeline.records import ACCOUNT_METRIC_FIELDS, AccountMetrics
from analytics_pipeline.warehouse._sql import batches, dialect_insert, require_aware, require_date
from analytics_pipeline.warehouse.content import UpsertCounts
from analytics_pipeline.warehouse.tables import ACCOUNT_METRICS_KEY, account_metrics_daily

_table = account_metrics_daily
_SNAPSHOT = "followers_total"
_PER_DAY: tuple[str, ...] = tuple(name for name in ACCOUNT_METRIC_FIELDS if name != _SNAPSHOT)
# What the stored row holds after a write, in this order: compared to skip identical writes.
_STORED: tuple[str, ...] = (*ACCOUNT_METRIC_FIELDS, "followers_observed_at")


def upsert_account_metrics(
    conn: sa.Connection,
    *,
    organization_id: str,
    integration_id: str,
    metric_date: dt.date,
    metrics: AccountMetrics,
    observed_at: dt.datetime,
) -> UpsertCounts:
    """Store one day's account metrics of one integration (NULL = not reported, 0 = zero).

    A NULL `followers_total` never overwrites a stored snapshot (see the module docstring).
    """
    observed_at = require_aware("observed_at", observed_at)
    row = {
        "organization_id": organization_id,
        "integration_id": integration_id,
        "metric_date": require_date("metric_date", metric_date),
        **_metric_values(metrics),
        "observed_at": observed_at,
    }
    row["followers_observed_at"] = observed_at if row[_SNAPSHOT] is not None else None
    return _upsert_rows(conn, [row])


def _metric_values(metrics: AccountMetrics) -> dict[str, int | None]:
    if not isinstance(metrics, AccountMetrics):
        raise TypeError(f"metrics must be an AccountMetrics, got {type(metrics).__name__}")
    values: dict[str, int | None] = {}
    for name in ACCOUNT_METRIC_FIELDS:
        value = getattr(metrics, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"metric {name} must be an int or None, got {type(value).__name__}")
        values[name] = value
    return values


def _upsert_rows(conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> UpsertCounts:
    """Upsert rows (last one wins per key), in key order and batches, counting exactly."""
    by_key = {_key(row): row for row in rows}
    ordered = [by_key[key] for key in sorted(by_key)]
    counts = UpsertCounts()
    for batch in batches(ordered):
        counts += _write_changed(conn, batch, _existing(conn, batch))
    return counts


def _key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in ACCOUNT_METRICS_KEY)


def _existing(
    conn: sa.Connection, batch: Sequence[Mapping[str, Any]]
) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The stored values (`_STORED` order) of the batch's rows that exist, by key."""
    keys = sa.tuple_(*(_table.c[name] for name in ACCOUNT_METRICS_KEY))
    query = sa.select(
        *(_table.c[name] for name in ACCOUNT_METRICS_KEY), *(_table.c[name] for name in _STORED)
    ).where(keys.in_([_key(row) for row in batch]))
    width = len(ACCOUNT_METRICS_KEY)
    return {tuple(row[:width]): tuple(row[width:]) for row in conn.execute(query)}


def _after_write(row: Mapping[str, Any], stored: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """What the stored row would hold after writing `row` (the SQL below does the same)."""
    values = {name: row[name] for name in _STORED}
    if stored is not None:
        before = dict(zip(_STORED, stored, strict=True))
        if row[_SNAPSHOT] is None or row[_SNAPSHOT] == before[_SNAPSHOT]:
            values[_SNAPSHOT] = before[_SNAPSHOT]
            values["followers_observed_at"] = before["followers_observed_at"]
    return tuple(values[name] for name in _STORED)


def _write_changed(
    conn: sa.Connection,
    batch: Sequence[Mapping[str, Any]],
    existing: Mapping[tuple[Any, ...], tuple[Any, ...]],
) -> UpsertCounts:
    to_write = [
        row
        for row in batch
        if existing.get(_key(row)) != _after_write(row, existing.get(_key(row)))
    ]
    if not to_write:
        return UpsertCounts(unchanged=len(batch))
    insert = dialect_insert(conn, _table)
    new, old = insert.excluded, _table.c
    keeps_snapshot = sa.or_(
        new[_SNAPSHOT].is_(None), new[_SNAPSHOT].is_not_distinct_from(old[_SNAPSHOT])
    )
    set_: dict[str, Any] = {name: new[name] for name in _PER_DAY}
    set_[_SNAPSHOT] = sa.func.coalesce(new[_SNAPSHOT], old[_SNAPSHOT])
    set_["followers_observed_at"] = sa.case(
        (keeps_snapshot, old.followers_observed_at), else_=new.followers_observed_at
    )
    set_["observed_at"] = new.observed_at
    changed = sa.or_(
        *(old[name].is_distinct_from(new[name]) for name in _PER_DAY),
        sa.not_(keeps_snapshot),
    )
    is_postgres = conn.dialect.name == "postgresql"
    returning: list[sa.ColumnElement[Any]] = [old[name] for name in ACCOUNT_METRICS_KEY]
    if is_postgres:
        # xmax is 0 on a freshly inserted row version and non-zero on one ON CONFLICT updated.
        returning.append(sa.literal_column("(xmax = 0)", sa.Boolean).label("was_inserted"))
    statement = insert.on_conflict_do_update(
        index_elements=[old[name] for name in ACCOUNT_METRICS_KEY], set_=set_, where=changed
    ).returning(*returning)
    written = conn.execute(statement, list(to_write)).all()
    if is_postgres:
        inserted = sum(1 for row in written if row.was_inserted)
    else:
        # SQLite serializes writers (BEGIN IMMEDIATE): what _existing read is still true.
        inserted = sum(
            1 for row in written if tuple(row[: len(ACCOUNT_METRICS_KEY)]) not in existing
        )
    return UpsertCounts(
        inserted=inserted, updated=len(written) - inserted, unchanged=len(batch) - len(written)
    )
