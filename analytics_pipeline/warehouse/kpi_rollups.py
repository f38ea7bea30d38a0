"""Reads of the rollups' inputs (`account_kpis_daily`, `content_performance_daily`) and the
idempotent write of `kpi_rollups`: one period of one grain (every organization, every scope) is
one transaction (the caller's), through bulk.py's upsert; rows of the period whose subject has no
KPI row any more are deleted, so the table always equals a fresh computation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa

from analytics_pipeline.kpis import periods, rollup
from analytics_pipeline.warehouse._sql import require_aware, require_date
from analytics_pipeline.warehouse.bulk import UpsertCounts, UpsertSpec, bulk_upsert
from analytics_pipeline.warehouse.kpis import grouped_rows
from analytics_pipeline.warehouse.tables import (
    KPI_ROLLUPS_KEY,
    account_kpis_daily,
    content_performance_daily,
    kpi_rollups,
)

_VALUES = tuple(c for c in rollup.ROLLUP_COLUMNS if c not in KPI_ROLLUPS_KEY)
_SPEC = UpsertSpec(
    kpi_rollups,
    KPI_ROLLUPS_KEY,
    compared=("period_end", *_VALUES),
    touched=("computed_at",),
)


def read_account_kpis(
    conn: sa.Connection, first_day: dt.date, last_day: dt.date, organization_id: str | None = None
) -> pd.DataFrame:
    """`account_kpis_daily` rows from the day before `first_day` (the followers at the start) to
    `last_day`, of one organization or all (`rollup.ACCOUNT_COLUMNS`)."""
    akd = account_kpis_daily
    query = sa.select(*(akd.c[name] for name in rollup.ACCOUNT_COLUMNS)).where(
        akd.c.metric_date.between(first_day - dt.timedelta(days=1), last_day)
    )
    if organization_id is not None:
        query = query.where(akd.c.organization_id == organization_id)
    query = query.order_by(akd.c.organization_id, akd.c.integration_id, akd.c.metric_date)
    rows = [tuple(row) for row in conn.execute(query)]
    return pd.DataFrame(rows, columns=list(rollup.ACCOUNT_COLUMNS))


def read_content_totals(
    conn: sa.Connection, first_day: dt.date, last_day: dt.date, organization_id: str | None = None
) -> pd.DataFrame:
    """Per content item: its known engagements summed over the days (`rollup.CONTENT_COLUMNS`;
    items without a known day are left out), of one organization or all."""
    cpd = content_performance_daily
    key = (cpd.c.organization_id, cpd.c.integration_id, cpd.c.external_content_id)
    query = (
        sa.select(*key, sa.func.sum(cpd.c.engagements))
        .where(cpd.c.metric_date.between(first_day, last_day), cpd.c.engagements.is_not(None))
        .group_by(*key)
    )
    if organization_id is not None:
        query = query.where(cpd.c.organization_id == organization_id)
    rows = [tuple(row) for row in conn.execute(query)]
    return pd.DataFrame(rows, columns=list(rollup.CONTENT_COLUMNS))


def compute_rollups(
    conn: sa.Connection,
    first_day: dt.date,
    last_day: dt.date,
    scopes: Sequence[str] = rollup.SCOPES,
    organization_id: str | None = None,
) -> pd.DataFrame:
    """The rollups of days first_day..last_day for `scopes`, from the stored daily KPIs."""
    accounts = read_account_kpis(conn, first_day, last_day, organization_id)
    content = read_content_totals(conn, first_day, last_day, organization_id)
    frames = [rollup.rollup(accounts, content, first_day, last_day, scope) for scope in scopes]
    non_empty = [frame for frame in frames if not frame.empty]
    if not non_empty:
        return pd.DataFrame(columns=list(rollup.ROLLUP_COLUMNS))
    return pd.concat(non_empty, ignore_index=True)


@dataclass(frozen=True)
class PeriodRollups:
    """What `refresh_period` computed and wrote for one period."""

    grain: str
    start: dt.date
    end: dt.date
    rows: pd.DataFrame
    counts: UpsertCounts
    deleted: int


def refresh_period(
    conn: sa.Connection, grain: str, start: dt.date, computed_at: dt.datetime
) -> PeriodRollups:
    """Recompute the `grain` period starting on `start` (every organization and scope) and
    upsert it in the caller's transaction; its stored rows without a subject now are deleted."""
    start, computed_at = require_date("start", start), require_aware("computed_at", computed_at)
    if periods.period_start(grain, start) != start:
        raise ValueError(f"{start} is not the first day of a {grain}")
    end = periods.period_end(grain, start)
    rows = compute_rollups(conn, start, end)
    deleted = _delete_stale(conn, grain, start, rows)
    counts = UpsertCounts()
    columns = ("scope_key", *_VALUES)
    for (organization_id, scope), values in grouped_rows(
        rows, ("organization_id", "scope"), columns
    ):
        shared = {
            "period_grain": grain,
            "period_start": start,
            "organization_id": organization_id,
            "scope": scope,
            "period_end": end,
            "computed_at": computed_at,
        }
        counts += bulk_upsert(conn, _SPEC, shared=shared, columns=columns, rows=values)
    return PeriodRollups(grain, start, end, rows, counts, deleted)


def _delete_stale(conn: sa.Connection, grain: str, start: dt.date, rows: pd.DataFrame) -> int:
    kr = kpi_rollups
    subject = (kr.c.organization_id, kr.c.scope, kr.c.scope_key)
    period = (kr.c.period_grain == grain, kr.c.period_start == start)
    stored = {tuple(row) for row in conn.execute(sa.select(*subject).where(*period))}
    wanted = set(rows[["organization_id", "scope", "scope_key"]].itertuples(index=False, name=None))
    stale = sorted(stored - wanted)
    for organization_id, scope, scope_key in stale:
        conn.execute(
            sa.delete(kr).where(
                *period,
                kr.c.organization_id == organization_id,
                kr.c.scope == scope,
                kr.c.scope_key == scope_key,
            )
        )
    return len(stale)


def read_rollups(
    conn: sa.Connection,
    organization_id: str,
    grain: str,
    scope: str,
    first_day: dt.date,
    last_day: dt.date,
) -> pd.DataFrame:
    """The stored rollups of an organization's `grain` periods overlapping first_day..last_day,
    for `scope` (`period_start`, `period_end`, then `rollup.ROLLUP_COLUMNS`)."""
    kr = kpi_rollups
    columns = ("period_start", "period_end", *rollup.ROLLUP_COLUMNS)
    query = (
        sa.select(*(kr.c[name] for name in columns))
        .where(
            kr.c.organization_id == organization_id,
            kr.c.period_grain == grain,
            kr.c.scope == scope,
            kr.c.period_start <= last_day,
            kr.c.period_end >= first_day,
        )
        .order_by(kr.c.period_start, kr.c.scope_key)
    )
    rows = pd.DataFrame([tuple(row) for row in conn.execute(query)], columns=list(columns))
    return pd.concat(
        [rows[["period_start", "period_end"]], rollup.typed(rows[list(rollup.ROLLUP_COLUMNS)])],
        axis=1,
    )
