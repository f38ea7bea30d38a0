"""Idempotent writes of account-level daily metrics (`account_metrics_daily`).

The same upsert as content.py (bulk.py: rows identical to what is stored are not rewritten,
counts are exact), with one rule of its own for the followers snapshot:

`followers_total` is a SNAPSHOT of the total, which platforms can only tell for "now". A later
backfill of an old day (the other, per-day values can still be fetched then) arrives without it,
and must not erase the snapshot captured back then. So a NULL `followers_total` in the input
keeps the stored value, and `followers_observed_at` (when the stored snapshot was taken) changes
only when a different non-NULL `followers_total` is written (it is NULL on a row inserted
without a snapshot). A write whose only difference is a NULL `followers_total` is unchanged.
This is bulk.py's `Snapshot` rule, which lives in the SQL itself (COALESCE and CASE in the ON
CONFLICT update, and in its WHERE), so it holds even against a concurrent writer.

Every other metric is the platform's own value FOR that day: the latest observation replaces
the stored one, NULL included (NULL = the platform did not report it this time).
`observed_at` is when the stored values were first observed, as in content.py: re-upserting the
same values rewrites nothing; a write that changes anything sets it.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from analytics_pipeline.records import ACCOUNT_METRIC_FIELDS, AccountMetrics
from analytics_pipeline.warehouse._sql import require_aware, require_date
from analytics_pipeline.warehouse.bulk import Snapshot, UpsertCounts, UpsertSpec, bulk_upsert
from analytics_pipeline.warehouse.tables import ACCOUNT_METRICS_KEY, account_metrics_daily

_SNAPSHOT = "followers_total"
_PER_DAY: tuple[str, ...] = tuple(name for name in ACCOUNT_METRIC_FIELDS if name != _SNAPSHOT)
_SPEC = UpsertSpec(
    account_metrics_daily,
    ACCOUNT_METRICS_KEY,
    compared=_PER_DAY,
    touched=("observed_at",),
    snapshots=(Snapshot(_SNAPSHOT, stamp="followers_observed_at"),),
)
# The per-row columns (metric_date is the key column that varies); the others are shared.
_COLUMNS: tuple[str, ...] = ("metric_date", *ACCOUNT_METRIC_FIELDS)


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
    row = (require_date("metric_date", metric_date), *_metric_values(metrics))
    shared = {
        "organization_id": organization_id,
        "integration_id": integration_id,
        "observed_at": observed_at,
        "followers_observed_at": observed_at,  # written only with a new snapshot
    }
    return bulk_upsert(conn, _SPEC, shared=shared, columns=_COLUMNS, rows=[row])


def _metric_values(metrics: AccountMetrics) -> list[int | None]:
    """The metrics in ACCOUNT_METRIC_FIELDS order, each an int (not a bool) or None."""
    if not isinstance(metrics, AccountMetrics):
        raise TypeError(f"metrics must be an AccountMetrics, got {type(metrics).__name__}")
    values: list[int | None] = []
    for name in ACCOUNT_METRIC_FIELDS:
        value = getattr(metrics, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise TypeError(f"metric {name} must be an int or None, got {type(value).__name__}")
        values.append(value)
    return values
