"""Idempotent bulk writes of content items and their daily metrics.

Every write takes a connection the caller opened with ``engine.begin()`` and never commits, so
a whole partition lands (or not) as one transaction.

How an upsert works (details in bulk.py):
1. rows are validated, de-duplicated by key (the last one wins) and sorted by key: two writers
   touching overlapping keys then lock rows in the same order and cannot deadlock on PostgreSQL;
2. the values shared by the whole call (organization, integration, day, timestamps) are sent
   once; per-row values go in one statement per large batch (PostgreSQL: typed arrays unnested
   server-side; SQLite: the driver's executemany);
3. ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <a compared value differs>`` writes new and
   changed rows only: rows identical to what is stored are not rewritten (this is the common
   re-run case), and a row a concurrent writer already brought to the same values stays
   untouched. Counts are exact on both dialects (see bulk.py).

Timestamps: `content_items.first_seen_at` is set on insert and never overwritten;
`updated_at` changes only when a value changes. For metrics, `observed_at` is when the stored
values were observed; re-observing identical values rewrites nothing (the row stays
byte-for-byte identical), so `observed_at` is when those values were FIRST observed.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from analytics_pipeline.records import (
    METRIC_FIELDS,
    ContentFormat,
    ContentItem,
    ContentMetrics,
    ValueKind,
)
from analytics_pipeline.warehouse._sql import require_aware, require_date
from analytics_pipeline.warehouse.bulk import UpsertCounts, UpsertSpec, bulk_upsert
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


_CONTENT_SPEC = UpsertSpec(content_items, CONTENT_KEY, _CONTENT_COMPARED, ("updated_at",))
# Per-row columns, in the order `_content_row` builds them (the others are shared by the call).
_CONTENT_COLUMNS: tuple[str, ...] = (
    "external_content_id",
    "format",
    "caption",
    "hashtags",
    "permalink",
    "published_at",
    "reference_type",
)
_METRICS_SPEC = UpsertSpec(metrics_table, METRICS_KEY, _METRICS_COMPARED, ("observed_at",))
_METRICS_COLUMNS: tuple[str, ...] = ("external_content_id", *_METRICS_COMPARED)
# `_metrics_row`'s fast path: every attribute in one call, value kinds by dict lookup (a
# ValueKind member hashes and compares like its value), metric types checked as a set.
_METRICS_VALUES = operator.attrgetter("external_content_id", "value_kind", *METRIC_FIELDS)
_VALUE_KINDS: dict[str, str] = {kind.value: kind.value for kind in ValueKind}
_PLAIN_METRIC_TYPES = frozenset((int, type(None)))


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
    by_id = {row[0]: row for row in (_content_row(item) for item in items)}
    shared = {
        "organization_id": organization_id,
        "integration_id": integration_id,
        "platform": platform,
        "first_seen_at": now,
        "updated_at": now,
    }
    rows = [by_id[content_id] for content_id in sorted(by_id)]
    return bulk_upsert(conn, _CONTENT_SPEC, shared=shared, columns=_CONTENT_COLUMNS, rows=rows)


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
    by_id = {row[0]: row for row in map(_metrics_row, metrics)}
    shared = {
        "organization_id": organization_id,
        "integration_id": integration_id,
        "metric_date": metric_date,
        "observed_at": observed_at,
    }
    rows = [by_id[content_id] for content_id in sorted(by_id)]
    return bulk_upsert(conn, _METRICS_SPEC, shared=shared, columns=_METRICS_COLUMNS, rows=rows)


def content_ids_published_between(
    conn: sa.Connection,
    *,
    organization_id: str,
    integration_id: str,
    start: dt.datetime,
    end: dt.datetime,
) -> list[str]:
    """External ids of the items published in [start, end), sorted."""
    return list(
        permalinks_published_between(
            conn,
            organization_id=organization_id,
            integration_id=integration_id,
            start=start,
            end=end,
        )
    )


def permalinks_published_between(
    conn: sa.Connection,
    *,
    organization_id: str,
    integration_id: str,
    start: dt.datetime,
    end: dt.datetime,
) -> dict[str, str | None]:
    """External id -> stored permalink of the items published in [start, end), in id order."""
    start = require_aware("start", start)
    end = require_aware("end", end)
    query = sa.select(content_items.c.external_content_id, content_items.c.permalink).where(
        content_items.c.organization_id == organization_id,
        content_items.c.integration_id == integration_id,
        content_items.c.published_at >= start,
        content_items.c.published_at < end,
    )
    # Sorted in Python: the database's collation may order strings differently.
    return dict(sorted((row.external_content_id, row.permalink) for row in conn.execute(query)))


def _content_row(item: ContentItem) -> tuple[Any, ...]:
    """The item's values in `_CONTENT_COLUMNS` order, validated."""
    return (
        _content_id(item.external_content_id),
        ContentFormat(item.format).value,
        item.caption,
        [str(tag) for tag in item.hashtags],
        item.permalink,
        require_aware("published_at", item.published_at),
        _reference_type(item.reference_type),
    )


def _reference_type(value: str | None) -> str | None:
    """Refused here rather than by the CHECK: an IntegrityError would abort the transaction."""
    if value is None or value in REFERENCE_TYPES:
        return value
    raise ValueError(
        f"Unknown reference_type {value!r}: use one of {', '.join(REFERENCE_TYPES)}, "
        "or None for original content"
    )


def _metrics_row(metrics: ContentMetrics) -> tuple[Any, ...]:
    """The metrics' values in `_METRICS_COLUMNS` order, validated."""
    content_id, kind, *values = _METRICS_VALUES(metrics)
    if not _PLAIN_METRIC_TYPES.issuperset(map(type, values)):
        # Slow path: bool is refused, any other int subclass is accepted.
        for name, value in zip(METRIC_FIELDS, values, strict=True):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"metric {name} must be an int or None, got {type(value).__name__}")
    if type(content_id) is not str or not content_id:
        content_id = _content_id(content_id)
    value_kind = _VALUE_KINDS.get(kind) if isinstance(kind, str) else None
    if value_kind is None:
        value_kind = ValueKind(kind).value
    return (content_id, value_kind, *values)


def _content_id(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("external_content_id must be a non-empty string")
    return value
