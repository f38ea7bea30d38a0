"""Small helpers shared by the warehouse modules (dialect-specific INSERT, batching, checks)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

T = TypeVar("T")

# Rows per INSERT statement: 1,000 rows x 16 columns stays far below the bind-parameter limits
# (65,535 on PostgreSQL, 32,766 on SQLite >= 3.32).
BATCH_SIZE = 1_000


def dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT construct, which has `on_conflict_do_update`/`_nothing`."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported dialect {name!r}")


def batches(rows: Sequence[T], size: int | None = None) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` (default BATCH_SIZE, read at call time) rows."""
    size = size or BATCH_SIZE
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def require_aware(name: str, value: dt.datetime) -> dt.datetime:
    """`value` converted to UTC; naive datetimes are refused (their zone is unknown)."""
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got a naive datetime")
    return value.astimezone(dt.UTC)


def require_date(name: str, value: dt.date) -> dt.date:
    """`value` if it is a date; a datetime is refused rather than silently truncated."""
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise TypeError(f"{name} must be a datetime.date, got {type(value).__name__}")
    return value
