"""Idempotent bulk writes of content items and their daily metrics.

Every write takes a connection the caller opened with ``engine.begin()`` and never commits, so
a whole partition lands (or not) as one transaction.

How an upsert works, per batch of at most `BATCH_SIZE` rows:
1. rows are de-duplicated by key (the last one wins) and sorted by key: two writers touching
   overlapping keys then lock rows in the same order and cannot deadlock on PostgreSQL;
2. the batch's existing rows are read and compared in Python; rows identical to what is stored
   are not written at all (this is the common re-run case, and it is free);
3. new and changed rows go in ONE ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <a value differs>
   RETURNING`` statement. The WHERE clause keeps a row that a concurrent writer already brought
   to the same values untouched; RETURNING tells what was really written, so counts are exact
   (on PostgreSQL ``xmax = 0`` tells an insert from an update; SQLite serializes writers with
   BEGIN IMMEDIATE, so step 2's reading cannot be stale there).

Timestamps: `content_items.first_seen_at` is set on insert and never overwritten;
`updated_at` changes only when a value changes. For metrics, `observed_at` is when the stored
values were observed; re-observing identical values rewrites nothing (the row stays
byte-for-byte identical), so `observed_at` is when those values were FIRST observed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from analytics_pipeline.platforms.base import (
    METRIC_FIELDS,
    ContentFormat,
    ContentItem,
    ContentMetrics,
    ValueKind,
)
from analytics_pipeline.warehouse._sql import batches, dialect_insert, require_aware, require_date
from analytics_pipeline.warehouse.integrations import validate_platform
from analytics_pipeline.warehouse.tables import (
    CONTENT_KEY,
    METRICS_KEY,
    REFERENCE_TYPES,
    content_items,
)
from analytics_pipeline.warehouse.tables import content_metrics_daily as metrics_table

_CONTENT_COMPARED: tuple[str, ...] = (
    "platform",
    "format",
    "caption",
    "hashtags",
    "permalink",
    "published_at",
    "reference_type",
)
_METRICS_COMPARED: tuple[str, ...] = ("value_kind", *METRIC_FIELDS)


@dataclass(frozen=True)
class UpsertCounts:
    """What one upsert did: rows inserted, updated (a value changed), or left unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        if not isinstance(other, UpsertCounts):
            return NotImplemented
        return UpsertCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )

    @property
    def written(self) -> int:
        return self.inserted + self.updated

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


def upsert_content_items(
    conn: sa.Connection,
    *,
    organization_id: str,
    integration_id: str,
    platform: str,
    items: Sequence[ContentItem],
    now: dt.datetime,
) -> UpsertCounts:
    """Insert new items, update changed ones, leave identical ones untouched."""
    now = require_aware("now", now)
    validate_platform(platform)
    by_id = {item.external_content_id: _content_values(item, platform) for item in items}
    ordered = [
        {
            "organization_id": organization_id,
            "integration_id": integration_id,
            **by_id[content_id],
            "first_seen_at": now,
            "updated_at": now,
        }
        for content_id in sorted(by_id)
    ]
    counts = UpsertCounts()
    for batch in batches(ordered):
        existing = _existing(
            conn,
            content_items,
            _CONTENT_COMPARED,
            sa.and_(
                content_items.c.organization_id == organization_id,
                content_items.c.integration_id == integration_id,
            ),
            [row["external_content_id"] for row in batch],
        )
        counts += _write_changed(
            conn,
            content_items,
            key=CONTENT_KEY,
            compared=_CONTENT_COMPARED,
            touched=("updated_at",),
            batch=batch,
            existing=existing,
        )
    return counts


def upsert_content_metrics(
    conn: sa.Connection,
    *,
    organization_id: str,
    integration_id: str,
    metric_date: dt.date,
    metrics: Sequence[ContentMetrics],
    observed_at: dt.datetime,
) -> UpsertCounts:
    """Store one day's metrics per content item (NULL = not reported, 0 = reported zero)."""
    observed_at = require_aware("observed_at", observed_at)
    metric_date = require_date("metric_date", metric_date)
    by_id = {m.external_content_id: _metrics_values(m) for m in metrics}
    ordered = [
        {
            "organization_id": organization_id,
            "integration_id": integration_id,
            "metric_date": metric_date,
            **by_id[content_id],
            "observed_at": observed_at,
        }
        for content_id in sorted(by_id)
    ]
    counts = UpsertCounts()
    for batch in batches(ordered):
        existing = _existing(
            conn,
            metrics_table,
            _METRICS_COMPARED,
            sa.and_(
                metrics_table.c.organization_id == organization_id,
                metrics_table.c.integration_id == integration_id,
                metrics_table.c.metric_date == metric_date,
            ),
            [row["external_content_id"] for row in batch],
        )
        counts += _write_changed(
            conn,
            metrics_table,
            key=METRICS_KEY,
            compared=_METRICS_COMPARED,
            touched=("observed_at",),
            batch=batch,
            existing=existing,
        )
    return counts


def content_ids_published_between(
    conn: sa.Connection,
    *,
    organization_id: str,
    integration_id: str,
    start: dt.datetime,
    end: dt.datetime,
) -> list[str]:
    """External ids of the items published in [start, end), sorted."""
    start = require_aware("start", start)
    end = require_aware("end", end)
    query = sa.select(content_items.c.external_content_id).where(
        content_items.c.organization_id == organization_id,
        content_items.c.integration_id == integration_id,
        content_items.c.published_at >= start,
        content_items.c.published_at < end,
    )
    # Sorted in Python: the database's collation may order strings differently.
    return sorted(conn.scalars(query))


def _content_values(item: ContentItem, platform: str) -> dict[str, Any]:
    return {
        "external_content_id": _content_id(item.external_content_id),
        "platform": platform,
        "format": ContentFormat(item.format).value,
        "caption": item.caption,
        "hashtags": [str(tag) for tag in item.hashtags],
        "permalink": item.permalink,
        "published_at": require_aware("published_at", item.published_at),
        "reference_type": _reference_type(item.reference_type),
    }


def _reference_type(value: str | None) -> str | None:
    """Refused here rather than by the CHECK: an IntegrityError would abort the transaction."""
    if value is None or value in REFERENCE_TYPES:
        return value
    raise ValueError(
        f"Unknown reference_type {value!r}: use one of {', '.join(REFERENCE_TYPES)}, "
        "or None for original content"
    )


def _metrics_values(metrics: ContentMetrics) -> dict[str, Any]:
    values: dict[str, Any] = {
        "external_content_id": _content_id(metrics.external_content_id),
        "value_kind": ValueKind(metrics.value_kind).value,
    }
    for name in METRIC_FIELDS:
        value = getattr(metrics, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"metric {name} must be an int or None, got {type(value).__name__}")
        values[name] = value
    return values


def _content_id(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("external_content_id must be a non-empty string")
    return value


def _existing(
    conn: sa.Connection,
    table: sa.Table,
    compared: Sequence[str],
    scope: sa.ColumnElement[bool],
    content_ids: Sequence[str],
) -> dict[str, tuple[Any, ...]]:
    """The compared values of the rows already stored for these ids, by external id."""
    query = sa.select(table.c.external_content_id, *(table.c[name] for name in compared)).where(
        scope, table.c.external_content_id.in_(content_ids)
    )
    return {row[0]: tuple(row[1:]) for row in conn.execute(query)}


def _write_changed(
    conn: sa.Connection,
    table: sa.Table,
    *,
    key: Sequence[str],
    compared: Sequence[str],
    touched: Sequence[str],
    batch: Sequence[Mapping[str, Any]],
    existing: Mapping[str, tuple[Any, ...]],
) -> UpsertCounts:
    """Upsert the rows of `batch` that are new or differ from `existing`; count exactly."""
    to_write = [
        row
        for row in batch
        if existing.get(row["external_content_id"]) != tuple(row[name] for name in compared)
    ]
    if not to_write:
        return UpsertCounts(unchanged=len(batch))
    insert = dialect_insert(conn, table)
    is_postgres = conn.dialect.name == "postgresql"
    returning: list[sa.ColumnElement[Any]] = [table.c.external_content_id]
    if is_postgres:
        # xmax is 0 on a freshly inserted row version and non-zero on one ON CONFLICT updated.
        returning.append(sa.literal_column("(xmax = 0)", sa.Boolean).label("was_inserted"))
    statement = insert.on_conflict_do_update(
        index_elements=[table.c[name] for name in key],
        set_={name: insert.excluded[name] for name in (*compared, *touched)},
        where=sa.or_(*(table.c[name].is_distinct_from(insert.excluded[name]) for name in compared)),
    ).returning(*returning)
    written = conn.execute(statement, list(to_write)).all()
    if is_postgres:
        inserted = sum(1 for row in written if row.was_inserted)
    else:
        inserted = sum(1 for row in written if row.external_content_id not in existing)
    return UpsertCounts(
        inserted=inserted,
        updated=len(written) - inserted,
        unchanged=len(batch) - len(written),
    )
