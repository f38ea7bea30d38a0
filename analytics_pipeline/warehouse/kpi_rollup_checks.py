"""The queries behind the rollup asset checks (defs/kpi_rollup_checks.py): each selects the
violating `kpi_rollups` rows of one period. Counted and sampled by `checks_sql.find_violations`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from analytics_pipeline.kpis.definitions import RATE_UPPER_BOUND
from analytics_pipeline.warehouse.tables import account_kpis_daily as akd
from analytics_pipeline.warehouse.tables import kpi_rollups as kr

_STATS = ("engagements", "reach", "impressions")
# kpi_rollups column -> its recomputation from the period's account_kpis_daily rows.
_SUBJECT = {
    "integration": akd.c.integration_id,
    "organization": akd.c.organization_id,
    "platform": akd.c.platform,
}


def _recomputed(scope: str, start: dt.date, end: dt.date) -> sa.Select[Any]:
    key = _SUBJECT[scope]
    sums: list[sa.ColumnElement[Any]] = [
        sa.func.count(sa.distinct(akd.c.metric_date)).label("days"),
        sa.func.count(sa.distinct(akd.c.integration_id)).label("integrations"),
        sa.func.sum(akd.c.items_published).label("items_published"),
        sa.func.sum(akd.c.new_followers).label("new_followers_total"),
    ]
    for name in _STATS:
        value = akd.c[name]
        sums.append(sa.func.sum(value).label(f"{name}_total"))
        known_day = sa.case((value.is_not(None), akd.c.metric_date))
        sums.append(sa.func.count(sa.distinct(known_day)).label(f"days_with_{name}"))
    return (
        sa.select(
            akd.c.organization_id,
            sa.literal(scope, sa.String(16)).label("scope"),
            key.label("scope_key"),
            *sums,
        )
        .where(akd.c.metric_date.between(start, end))
        .group_by(akd.c.organization_id, key)
    )


COMPARED: tuple[str, ...] = (
    "days",
    "integrations",
    "items_published",
    "new_followers_total",
    *(f"{name}_total" for name in _STATS),
    *(f"days_with_{name}" for name in _STATS),
)


def totals_not_sum_of_days(grain: str, start: dt.date, end: dt.date) -> sa.Select[Any]:
    """Rollup rows of the period whose totals or day counts differ from the sum of the period's
    `account_kpis_daily` rows (recomputed here in SQL), rollup rows without any daily row, and
    subjects with daily rows but no rollup row."""
    days = sa.union_all(*(_recomputed(scope, start, end) for scope in _SUBJECT)).subquery("d")
    stored = (
        sa.select(kr).where(kr.c.period_grain == grain, kr.c.period_start == start).subquery("r")
    )
    subject = ("organization_id", "scope", "scope_key")
    joined = stored.join(
        days, sa.and_(*(stored.c[name] == days.c[name] for name in subject)), full=True
    )
    return (
        sa.select(
            *(sa.func.coalesce(stored.c[name], days.c[name]).label(name) for name in subject),
            stored.c.engagements_total,
            days.c.engagements_total.label("days_engagements_total"),
            stored.c.days,
            days.c.days.label("days_counted"),
        )
        .select_from(joined)
        .where(
            sa.or_(
                stored.c.scope_key.is_(None),
                days.c.scope_key.is_(None),
                *(stored.c[name].is_distinct_from(days.c[name]) for name in COMPARED),
            )
        )
    )


def rates_out_of_bounds(grain: str, start: dt.date, end: dt.date) -> sa.Select[Any]:
    """Rollup rows of the period whose engagement rate is negative (only a platform's recount can
    make a period's engagements negative) or above RATE_UPPER_BOUND."""
    return sa.select(kr.c.organization_id, kr.c.scope, kr.c.scope_key, kr.c.engagement_rate).where(
        kr.c.period_grain == grain,
        kr.c.period_start == start,
        sa.or_(kr.c.engagement_rate < 0, kr.c.engagement_rate > RATE_UPPER_BOUND),
    )
