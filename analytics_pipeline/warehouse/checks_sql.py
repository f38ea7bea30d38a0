"""Data-quality queries behind the asset checks. Each returns a count that should be 0.

The duplicate checks should always pass thanks to the unique keys; they are there to catch a
future migration that drops or weakens one.

The negative-value checks read the stored tables only: a lifetime or per-day value is never
negative. A negative day-over-day DIFFERENCE of lifetime snapshots (a platform revised a counter
down) is legitimate and lives only in the `content_metrics_daily_change` view, flagged by its
`counter_decreased` column, so it is not a violation here.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from analytics_pipeline.records import ACCOUNT_METRIC_FIELDS, METRIC_FIELDS
from analytics_pipeline.warehouse.tables import (
    ACCOUNT_METRICS_KEY,
    CONTENT_KEY,
    METRICS_KEY,
    account_metrics_daily,
    content_items,
    content_metrics_daily,
)


def _duplicate_key_groups(conn: sa.Connection, table: sa.Table, key: Sequence[str]) -> int:
    groups = (
        sa.select(*(table.c[name] for name in key))
        .group_by(*(table.c[name] for name in key))
        .having(sa.func.count() > 1)
        .subquery()
    )
    return int(conn.scalar(sa.select(sa.func.count()).select_from(groups)) or 0)


def duplicate_metric_keys(conn: sa.Connection) -> int:
    """Number of (organization, integration, content, date) keys held by more than one row."""
    return _duplicate_key_groups(conn, content_metrics_daily, METRICS_KEY)


def duplicate_content_keys(conn: sa.Connection) -> int:
    """Number of (organization, integration, content) keys held by more than one row."""
    return _duplicate_key_groups(conn, content_items, CONTENT_KEY)


def orphan_metric_rows(conn: sa.Connection) -> int:
    """Metrics rows whose content item is not in content_items."""
    has_item = (
        sa.select(sa.literal(1))
        .where(*(content_items.c[name] == content_metrics_daily.c[name] for name in CONTENT_KEY))
        .exists()
    )
    query = sa.select(sa.func.count()).select_from(content_metrics_daily).where(~has_item)
    return int(conn.scalar(query) or 0)


def _rows_with_a_negative_value(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str]
) -> int:
    query = (
        sa.select(sa.func.count())
        .select_from(table)
        .where(sa.or_(*(table.c[name] < 0 for name in columns)))
    )
    return int(conn.scalar(query) or 0)


def negative_metric_values(conn: sa.Connection) -> int:
    """content_metrics_daily rows with at least one negative value (NULL = "not reported")."""
    return _rows_with_a_negative_value(conn, content_metrics_daily, METRIC_FIELDS)


def account_duplicate_keys(conn: sa.Connection) -> int:
    """Number of (organization, integration, date) keys of account_metrics_daily held twice+."""
    return _duplicate_key_groups(conn, account_metrics_daily, ACCOUNT_METRICS_KEY)


def negative_account_values(conn: sa.Connection) -> int:
    """account_metrics_daily rows with at least one negative value (NULL = "not reported")."""
    return _rows_with_a_negative_value(conn, account_metrics_daily, ACCOUNT_METRIC_FIELDS)
