"""The queries behind the KPI asset checks (defs/kpi_checks.py): each selects the violating rows
of the KPI tables for the days [first_day, last_day], read through the `metric_date` indexes.
Counted and sampled by `checks_sql.find_violations`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from analytics_pipeline.kpis.definitions import RATE_UPPER_BOUND
from analytics_pipeline.warehouse.tables import account_kpis_daily as akd
from analytics_pipeline.warehouse.tables import content_performance_daily as cpd

_CONTENT_RATES = (cpd.c.engagement_rate_on_reach, cpd.c.engagement_rate_on_impressions)


def _content_days(first_day: dt.date, last_day: dt.date) -> sa.ColumnElement[bool]:
    return cpd.c.metric_date.between(first_day, last_day)


def _content_key() -> tuple[sa.ColumnElement[Any], ...]:
    return (cpd.c.metric_date, cpd.c.integration_id, cpd.c.external_content_id)


def negative_content_rates(first_day: dt.date, last_day: dt.date) -> sa.Select[Any]:
    """Content rows without a decreased counter whose rate is negative (impossible when every
    per-day input is >= 0 and every denominator > 0: a computation bug or a bad input)."""
    return sa.select(*_content_key(), *_CONTENT_RATES).where(
        _content_days(first_day, last_day),
        sa.not_(cpd.c.counter_decreased),
        sa.or_(*(rate < 0 for rate in _CONTENT_RATES)),
    )


def content_rates_above_bound(first_day: dt.date, last_day: dt.date) -> sa.Select[Any]:
    """Content rows with a rate above RATE_UPPER_BOUND (possible, but usually a recount)."""
    return sa.select(*_content_key(), *_CONTENT_RATES).where(
        _content_days(first_day, last_day),
        sa.or_(*(rate > RATE_UPPER_BOUND for rate in _CONTENT_RATES)),
    )


def inconsistent_coverage(first_day: dt.date, last_day: dt.date) -> sa.Select[Any]:
    """Content rows whose coverage contradicts their engagements: more inputs known than the
    platform has, none expected, or engagements NULL exactly when no input was known not held."""
    known, expected = cpd.c.engagement_inputs_known, cpd.c.engagement_inputs_expected
    return sa.select(*_content_key(), cpd.c.engagements, known, expected).where(
        _content_days(first_day, last_day),
        sa.or_(
            known < 0,
            known > expected,
            expected < 1,
            sa.and_(known == 0, cpd.c.engagements.is_not(None)),
            sa.and_(known > 0, cpd.c.engagements.is_(None)),
        ),
    )


def negative_account_rates(first_day: dt.date, last_day: dt.date) -> sa.Select[Any]:
    """Account rows whose engagement rate is negative while no item of the day had a decreased
    counter."""
    decreased = (
        sa.select(sa.literal(1))
        .where(
            cpd.c.organization_id == akd.c.organization_id,
            cpd.c.integration_id == akd.c.integration_id,
            cpd.c.metric_date == akd.c.metric_date,
            cpd.c.counter_decreased,
        )
        .exists()
    )
    return sa.select(akd.c.metric_date, akd.c.integration_id, akd.c.engagement_rate).where(
        akd.c.metric_date.between(first_day, last_day),
        akd.c.engagement_rate < 0,
        sa.not_(decreased),
    )


def account_engagements_not_content_sum(first_day: dt.date, last_day: dt.date) -> sa.Select[Any]:
    """Account rows whose engagements / item counts differ from their day's content rows."""
    totals = (
        sa.select(
            cpd.c.organization_id,
            cpd.c.integration_id,
            cpd.c.metric_date,
            sa.func.sum(cpd.c.engagements).label("engagements"),
            sa.func.count().label("item_count"),
        )
        .where(_content_days(first_day, last_day))
        .group_by(cpd.c.organization_id, cpd.c.integration_id, cpd.c.metric_date)
        .subquery()
    )
    joined = akd.outerjoin(
        totals,
        sa.and_(
            totals.c.organization_id == akd.c.organization_id,
            totals.c.integration_id == akd.c.integration_id,
            totals.c.metric_date == akd.c.metric_date,
        ),
    )
    return (
        sa.select(akd.c.metric_date, akd.c.integration_id, akd.c.engagements, totals.c.engagements)
        .select_from(joined)
        .where(
            akd.c.metric_date.between(first_day, last_day),
            sa.or_(
                akd.c.engagements.is_distinct_from(totals.c.engagements),
                akd.c.items_measured != sa.func.coalesce(totals.c.item_count, 0),
            ),
        )
    )
