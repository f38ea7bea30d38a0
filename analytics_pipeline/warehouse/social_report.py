"""Reads and idempotent writes of `social_media_report` (computed in kpis/social_report.py).

A refresh of day D rewrites the report rows of the items that have a content_metrics_daily row
on D ("seen" on D), with their latest totals whatever the day: re-running an older day, or days
in any order, leaves the same rows. Items not seen on D keep their row. Written through bulk.py's
upsert in the caller's transaction (one transaction per day, like the daily KPIs).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa

from analytics_pipeline.kpis import social_report
from analytics_pipeline.kpis.content import DAY_METRICS
from analytics_pipeline.records import TotalsBasis, ValueKind
from analytics_pipeline.warehouse._sql import require_aware, require_date
from analytics_pipeline.warehouse.bulk import UpsertCounts, UpsertSpec
from analytics_pipeline.warehouse.kpis import numeric_frame, same_item, upsert_groups
from analytics_pipeline.warehouse.tables import (
    CONTENT_KEY,
    SOCIAL_MEDIA_REPORT_KEY,
    content_items,
    content_metrics_daily,
    social_media_report,
    tracked_integrations,
)

_VALUES = tuple(c for c in social_report.OUTPUT_COLUMNS if c not in SOCIAL_MEDIA_REPORT_KEY)
_SPEC = UpsertSpec(
    social_media_report, SOCIAL_MEDIA_REPORT_KEY, compared=_VALUES, touched=("computed_at",)
)


def read_report_day(conn: sa.Connection, day: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The items seen on `day` with their newest metrics row (`social_report.INPUT_COLUMNS`),
    and the sums of their 'daily' rows (`social_report.SUM_COLUMNS`; items without any are
    absent)."""
    day = require_date("day", day)
    return _read_latest(conn, day), _read_daily_sums(conn, day)


def _read_latest(conn: sa.Connection, day: dt.date) -> pd.DataFrame:
    seen, item, ti = content_metrics_daily, content_items, tracked_integrations
    latest, newer = content_metrics_daily.alias("latest"), content_metrics_daily.alias("newer")
    newest_date = sa.select(sa.func.max(newer.c.metric_date)).where(same_item(seen, newer))
    query = (
        sa.select(
            *(seen.c[name] for name in CONTENT_KEY),
            item.c.platform,
            ti.c.display_name,
            item.c.format,
            item.c.caption,
            item.c.hashtags,
            item.c.permalink,
            item.c.published_at,
            latest.c.metric_date,
            latest.c.value_kind,
            *(latest.c[name] for name in DAY_METRICS),
        )
        .join(item, same_item(seen, item))
        .join(
            latest,
            sa.and_(same_item(seen, latest), latest.c.metric_date == newest_date.scalar_subquery()),
        )
        .outerjoin(
            ti,
            sa.and_(
                ti.c.organization_id == seen.c.organization_id,
                ti.c.integration_id == seen.c.integration_id,
            ),
        )
        .where(seen.c.metric_date == day)
        .order_by(*(seen.c[name] for name in CONTENT_KEY))
    )
    numeric = {f"latest_{name}" for name in DAY_METRICS}
    return numeric_frame(conn.execute(query).all(), social_report.INPUT_COLUMNS, numeric)


def _read_daily_sums(conn: sa.Connection, day: dt.date) -> pd.DataFrame:
    seen, daily = content_metrics_daily, content_metrics_daily.alias("daily")
    query = (
        sa.select(
            *(seen.c[name] for name in CONTENT_KEY),
            sa.func.count(),
            *(sa.func.sum(daily.c[name]) for name in DAY_METRICS),
        )
        .join(
            daily,
            sa.and_(same_item(seen, daily), daily.c.value_kind == ValueKind.DAILY.value),
        )
        .where(seen.c.metric_date == day)
        .group_by(*(seen.c[name] for name in CONTENT_KEY))
    )
    # Floats: SUM of BIGINT is NUMERIC on PostgreSQL (Decimal), an int on SQLite.
    numeric = social_report.SUM_COLUMNS[len(CONTENT_KEY) :]
    return numeric_frame(conn.execute(query).all(), social_report.SUM_COLUMNS, numeric)


def write_report(conn: sa.Connection, rows: pd.DataFrame, computed_at: dt.datetime) -> UpsertCounts:
    """Upsert report rows (one call per integration)."""
    shared = {"computed_at": require_aware("computed_at", computed_at)}
    columns = ("external_content_id", *_VALUES)
    by = ("organization_id", "integration_id")
    return upsert_groups(conn, _SPEC, rows, by, columns, shared)


class ReportDay:
    """What `refresh_report_day` computed and wrote."""

    def __init__(self, rows: pd.DataFrame, counts: UpsertCounts) -> None:
        self.rows = rows
        self.counts = counts


def refresh_report_day(conn: sa.Connection, day: dt.date, computed_at: dt.datetime) -> ReportDay:
    """Recompute and upsert the report rows of the items seen on `day`, in the caller's
    transaction."""
    items, sums = read_report_day(conn, day)
    rows = social_report.social_media_report(items, sums)
    return ReportDay(rows, write_report(conn, rows, computed_at))


def report_row_count(conn: sa.Connection) -> int:
    """Rows in the whole report table."""
    return int(conn.scalar(sa.select(sa.func.count()).select_from(social_media_report)) or 0)


def report_violations(day: dt.date) -> sa.Select[Any]:
    """The items seen on `day` whose report row breaks what the table promises: no row, a row
    as of a day before `day` (the day's refresh did not reach it), a negative total or rate,
    coverage contradicting engagements, or `days_summed` contradicting the totals basis."""
    r, seen, item = social_media_report, content_metrics_daily, content_items
    known, expected = r.c.engagement_inputs_known, r.c.engagement_inputs_expected
    rates = (r.c.engagement_rate_on_reach, r.c.engagement_rate_on_impressions)
    summed = r.c.totals_basis == TotalsBasis.SUM_OF_DAILY.value
    broken = sa.or_(
        r.c.integration_id.is_(None),
        r.c.as_of_date < day,
        *(r.c[name] < 0 for name in (*DAY_METRICS, "engagements")),
        *(rate < 0 for rate in rates),
        known < 0,
        known > expected,
        sa.and_(known == 0, r.c.engagements.is_not(None)),
        sa.and_(known > 0, r.c.engagements.is_(None)),
        sa.and_(summed, r.c.days_summed.is_(None)),
        sa.and_(sa.not_(summed), r.c.days_summed.is_not(None)),
    )
    return (
        sa.select(
            seen.c.integration_id, seen.c.external_content_id, r.c.as_of_date, r.c.engagements
        )
        .join(item, same_item(seen, item))
        .outerjoin(r, same_item(seen, r))
        .where(seen.c.metric_date == day, broken)
    )


def report_items_by_integration(conn: sa.Connection, organization_id: str) -> dict[str, int]:
    """How many report rows each integration of the organization has."""
    r = social_media_report
    query = (
        sa.select(r.c.integration_id, sa.func.count())
        .where(r.c.organization_id == organization_id)
        .group_by(r.c.integration_id)
    )
    return {str(integration_id): int(count) for integration_id, count in conn.execute(query)}
