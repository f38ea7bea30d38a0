"""Asset checks on the KPI tables, for the days a KPI run computed.

They run in the KPI step right after its writes (each can also be launched alone: without a
partition they read yesterday and today, UTC). Every result carries the number of violating rows
and up to five of them; the coverage check also reports how complete the day's engagement
inputs were.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline.kpis.definitions import RATE_UPPER_BOUND
from analytics_pipeline.warehouse import kpi_checks
from analytics_pipeline.warehouse.checks_sql import find_violations
from analytics_pipeline.warehouse.kpis import coverage_summary

CONTENT_PERFORMANCE_DAILY = dg.AssetKey("content_performance_daily")
ACCOUNT_KPIS_DAILY = dg.AssetKey("account_kpis_daily")


@dataclass(frozen=True)
class _KpiCheck:
    asset: dg.AssetKey
    name: str
    description: str
    query: Callable[[dt.date, dt.date], sa.Select[Any]]
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(self.asset, self.name)


KPI_CHECKS: tuple[_KpiCheck, ...] = (
    _KpiCheck(
        CONTENT_PERFORMANCE_DAILY,
        "rates_not_negative",
        "No engagement rate (on reach, on impressions) is negative on a row without a decreased "
        "lifetime counter: per-day inputs are >= 0 and denominators > 0 there.",
        kpi_checks.negative_content_rates,
    ),
    _KpiCheck(
        CONTENT_PERFORMANCE_DAILY,
        "rates_within_upper_bound",
        f"WARN: no engagement rate exceeds {RATE_UPPER_BOUND:g} (more engagements than "
        "accounts reached in a day happens, several times more usually means a recount).",
        kpi_checks.content_rates_above_bound,
        dg.AssetCheckSeverity.WARN,
    ),
    _KpiCheck(
        CONTENT_PERFORMANCE_DAILY,
        "engagement_coverage_reported",
        "Every row says how many of its platform's engagement inputs were known "
        "(0 < expected, known <= expected) and engagements is NULL exactly when none was. "
        "The metadata reports the day's coverage.",
        kpi_checks.inconsistent_coverage,
    ),
    _KpiCheck(
        ACCOUNT_KPIS_DAILY,
        "engagement_rate_not_negative",
        "No account engagement rate is negative on a day without a decreased counter.",
        kpi_checks.negative_account_rates,
    ),
    _KpiCheck(
        ACCOUNT_KPIS_DAILY,
        "engagements_equal_content_sum",
        "Each account row's engagements and items_measured equal the sum and count of its "
        "content_performance_daily rows of the day.",
        kpi_checks.account_engagements_not_content_sum,
    ),
)

KPI_CHECK_SPECS = [
    dg.AssetCheckSpec(check.name, asset=check.asset, description=check.description)
    for check in KPI_CHECKS
]


def run_kpi_checks(
    engine: sa.Engine,
    selected: Iterable[dg.AssetCheckKey],
    days: Sequence[dt.date],
    today: dt.date | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """The results of the `selected` checks over `days` (none: yesterday and today, UTC)."""
    wanted = set(selected)
    checks = [check for check in KPI_CHECKS if check.key in wanted]
    if not checks:
        return
    if days:
        first_day, last_day = min(days), max(days)
    else:
        last_day = today or dt.datetime.now(dt.UTC).date()
        first_day = last_day - dt.timedelta(days=1)
    scope = first_day.isoformat() if first_day == last_day else f"{first_day}..{last_day}"
    with engine.connect() as conn:
        for check in checks:
            found = find_violations(conn, check.query(first_day, last_day))
            metadata: dict[str, Any] = {
                "violations": found.count,
                "examples": dg.MetadataValue.json(list(found.examples)),
                "scope_days": scope,
            }
            if check.name == "engagement_coverage_reported":
                metadata.update(coverage_summary(conn, first_day, last_day))
            yield dg.AssetCheckResult(
                asset_key=check.asset,
                check_name=check.name,
                passed=found.count == 0,
                severity=check.severity,
                description=f"{found.count} violation(s) in {scope}.",
                metadata=metadata,
            )
