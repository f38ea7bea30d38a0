"""Small helpers shared by the warehouse modules (dialect-specific INSERT, argument checks)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT construct, which has `on_conflict_do_update`/`_nothing`."""
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported dialect {name!r}")


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
