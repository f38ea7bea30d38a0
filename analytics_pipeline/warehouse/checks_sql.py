"""Data-quality queries behind the asset checks, scoped to the integrations and days of a run.

Each query function takes a `CheckScope` and returns the SELECT of the violating rows (one row
per violation; its columns are the keys an operator needs to find it), and `find_violations`
turns such a SELECT into a count plus a few examples. An empty result is a pass.

Scoping, and the index each query can use (a check reads what the run wrote, not the history of
every integration):
- content_items: `integration_id IN (scope) AND published_at` in the scope's days, served by the
  index (integration_id, published_at).
- content_metrics_daily and account_metrics_daily: joined to `tracked_integrations` (primary
  key lookups for the scope's ids) on (organization_id, integration_id), plus `metric_date` in
  the scope's days, so that each table's unique key, which starts with (organization_id,
  integration_id), serves the lookup. metric_date is not the next column of the
  content_metrics_daily key, so that scan covers the index entries of the scoped integrations
  only (filtered by date inside the index), not the other integrations' rows. Rows stored under
  an organization that is not the integration's current one are therefore out of these checks'
  scope; `content_integration_mismatches` reports that disagreement for content_items.

No check looks for duplicate keys: the unique keys of tables.py make duplicates impossible, and a
test compares a migrated database's keys with tables.py.

The negative-value checks read the stored tables only: a lifetime or per-day value is never
negative. A negative day-over-day DIFFERENCE of lifetime snapshots (a platform revised a counter
down) is legitimate: it lives in the `content_metrics_daily_change` view, flagged by its
`counter_decreased` column, and `decreased_counters` reports it as a warning.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from analytics_pipeline.records import ACCOUNT_METRIC_FIELDS, METRIC_FIELDS
from analytics_pipeline.warehouse._sql import require_date
from analytics_pipeline.warehouse.tables import (
    CONTENT_KEY,
    account_metrics_daily,
    content_items,
    content_metrics_daily,
    content_metrics_daily_change,
    tracked_integrations,
)

# Violating rows returned as examples by `find_violations`.
EXAMPLES = 5


@dataclass(frozen=True)
class CheckScope:
    """The integrations and the UTC days (both inclusive) a check looks at."""

    integration_ids: tuple[str, ...]
    first_day: dt.date
    last_day: dt.date

    @classmethod
    def of(
        cls, integration_ids: Iterable[str], first_day: dt.date, last_day: dt.date
    ) -> CheckScope:
        """A scope with its ids de-duplicated and sorted; refuses an empty day range."""
        first_day = require_date("first_day", first_day)
        last_day = require_date("last_day", last_day)
        if last_day < first_day:
            raise ValueError(f"empty day range {first_day}..{last_day}")
        return cls(tuple(sorted(set(integration_ids))), first_day, last_day)

    @property
    def start(self) -> dt.datetime:
        """The first instant of the scope (UTC)."""
        return dt.datetime.combine(self.first_day, dt.time(), dt.UTC)

    @property
    def end(self) -> dt.datetime:
        """The first instant after the scope (UTC)."""
        return dt.datetime.combine(self.last_day + dt.timedelta(days=1), dt.time(), dt.UTC)


@dataclass(frozen=True)
class Violations:
    """How many rows a check query found, and the first `EXAMPLES` of them (key -> text)."""

    count: int
    examples: tuple[dict[str, str], ...]


def find_violations(
    conn: sa.Connection, query: sa.Select[Any], limit: int = EXAMPLES
) -> Violations:
    """Count the rows of a check query and fetch the first `limit` of them in key order."""
    count = int(conn.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)
    examples: tuple[dict[str, str], ...] = ()
    if count:
        ordered = query.order_by(*query.selected_columns).limit(limit)
        examples = tuple(
            {name: _text(value) for name, value in row.items()}
            for row in conn.execute(ordered).mappings()
        )
    return Violations(count, examples)


def _text(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def default_scope(conn: sa.Connection, today: dt.date) -> CheckScope:
    """Yesterday and today (UTC) for every tracked integration, whatever its status: the scope of
    a check that runs without partitions (e.g. launched alone from the UI)."""
    ids = conn.scalars(sa.select(tracked_integrations.c.integration_id))
    return CheckScope.of(ids, today - dt.timedelta(days=1), today)


def _scoped(table: sa.Table | sa.Alias, scope: CheckScope) -> tuple[sa.FromClause, list[Any]]:
    """`table` joined to the scope's tracked integrations on (organization_id, integration_id),
    and the WHERE clauses for the scope's days. The integration_id filter on `table` repeats
    what the join implies, for the planner's row estimates."""
    ti = tracked_integrations
    joined = table.join(
        ti,
        sa.and_(
            table.c.organization_id == ti.c.organization_id,
            table.c.integration_id == ti.c.integration_id,
        ),
    )
    where = [
        ti.c.integration_id.in_(scope.integration_ids),
        table.c.integration_id.in_(scope.integration_ids),
        table.c.metric_date >= scope.first_day,
        table.c.metric_date <= scope.last_day,
    ]
    return joined, where


# --- content_metadata ---------------------------------------------------------------------------


def content_integration_mismatches(scope: CheckScope) -> sa.Select[Any]:
    """content_items published on the scope's days by its integrations whose organization_id or
    platform differ from the integration's row in tracked_integrations: dashboards that filter
    by organization or platform would miss or misattribute them. Items of an integration that
    is no longer tracked have nothing to disagree with and are not reported."""
    c, ti = content_items, tracked_integrations
    return (
        sa.select(
            c.c.integration_id,
            c.c.external_content_id,
            c.c.organization_id,
            c.c.platform,
            ti.c.organization_id.label("tracked_organization_id"),
            ti.c.platform.label("tracked_platform"),
        )
        .select_from(c.join(ti, c.c.integration_id == ti.c.integration_id))
        .where(
            c.c.integration_id.in_(scope.integration_ids),
            ti.c.integration_id.in_(scope.integration_ids),
            c.c.published_at >= scope.start,
            c.c.published_at < scope.end,
            sa.or_(
                c.c.organization_id != ti.c.organization_id,
                c.c.platform != ti.c.platform,
            ),
        )
    )


# --- content_daily_metrics ----------------------------------------------------------------------


def orphan_metric_rows(scope: CheckScope) -> sa.Select[Any]:
    """content_metrics_daily rows of the scope whose content item is not in content_items
    (no foreign key exists; the same external id under another integration does not count)."""
    m = content_metrics_daily
    has_item = (
        sa.select(sa.literal(1))
        .where(*(content_items.c[name] == m.c[name] for name in CONTENT_KEY))
        .exists()
    )
    joined, where = _scoped(m, scope)
    return (
        sa.select(m.c.integration_id, m.c.external_content_id, m.c.metric_date)
        .select_from(joined)
        .where(*where, ~has_item)
    )


def negative_metric_values(scope: CheckScope) -> sa.Select[Any]:
    """content_metrics_daily rows of the scope with at least one negative value (NULL = "not
    reported", never a violation)."""
    m = content_metrics_daily
    joined, where = _scoped(m, scope)
    return (
        sa.select(m.c.integration_id, m.c.external_content_id, m.c.metric_date)
        .select_from(joined)
        .where(*where, sa.or_(*(m.c[name] < 0 for name in METRIC_FIELDS)))
    )


def mixed_value_kinds(scope: CheckScope) -> sa.Select[Any]:
    """(integration, day) pairs of the scope whose content_metrics_daily rows hold more than one
    value_kind: a platform reports one kind, the ingestion records one kind per partition, and
    a day's totals mixing lifetime totals with per-day values add up to nothing meaningful."""
    m = content_metrics_daily
    joined, where = _scoped(m, scope)
    return (
        sa.select(
            m.c.integration_id,
            m.c.metric_date,
            sa.func.min(m.c.value_kind).label("a_value_kind"),
            sa.func.max(m.c.value_kind).label("another_value_kind"),
        )
        .select_from(joined)
        .where(*where)
        .group_by(m.c.integration_id, m.c.metric_date)
        .having(sa.func.count(sa.distinct(m.c.value_kind)) > 1)
    )


def decreased_counters(scope: CheckScope) -> sa.Select[Any]:
    """Rows of the `content_metrics_daily_change` view in the scope whose lifetime counter went
    down since the day before (`counter_decreased`). Platforms do revise counters (spam likes
    removed, a view recount), so this is a warning; the difference is kept as observed."""
    v = content_metrics_daily_change
    joined, where = _scoped(v, scope)
    return (
        sa.select(v.c.integration_id, v.c.external_content_id, v.c.metric_date)
        .select_from(joined)
        .where(*where, v.c.counter_decreased == sa.true())
    )


# --- account_daily_metrics ----------------------------------------------------------------------


def negative_account_values(scope: CheckScope) -> sa.Select[Any]:
    """account_metrics_daily rows of the scope with at least one negative value (NULL = "not
    reported"; `new_followers` is the platform's gain of the day and is never negative either)."""
    a = account_metrics_daily
    joined, where = _scoped(a, scope)
    return (
        sa.select(a.c.integration_id, a.c.metric_date)
        .select_from(joined)
        .where(*where, sa.or_(*(a.c[name] < 0 for name in ACCOUNT_METRIC_FIELDS)))
    )


def followers_without_observed_at(scope: CheckScope) -> sa.Select[Any]:
    """account_metrics_daily rows of the scope with a `followers_total` snapshot but no
    `followers_observed_at`: the snapshot's age is unknown (no CHECK constraint guards it)."""
    a = account_metrics_daily
    joined, where = _scoped(a, scope)
    return (
        sa.select(a.c.integration_id, a.c.metric_date)
        .select_from(joined)
        .where(*where, a.c.followers_total.is_not(None), a.c.followers_observed_at.is_(None))
    )
