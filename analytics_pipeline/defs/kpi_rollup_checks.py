"""Asset checks on the weekly and monthly rollups, for the periods a rollup run computed.

They run in the rollup step right after its writes (each can also be launched alone: without a
partition they read the current period and the one before). `rollup_totals_equal_sum_of_days` is
blocking: a failure fails the step, so nothing downstream reads totals that do not add up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline.kpis import periods
from analytics_pipeline.kpis.definitions import RATE_UPPER_BOUND
from analytics_pipeline.warehouse import kpi_rollup_checks
from analytics_pipeline.warehouse.checks_sql import EXAMPLES, find_violations

TOTALS_CHECK = "rollup_totals_equal_sum_of_days"
RATE_CHECK = "rollup_engagement_rate_within_bounds"


@dataclass(frozen=True)
class _RollupCheck:
    name: str
    description: str
    query: Callable[[str, dt.date, dt.date], sa.Select[Any]]
    severity: dg.AssetCheckSeverity
    blocking: bool


ROLLUP_CHECKS: tuple[_RollupCheck, ...] = (
    _RollupCheck(
        TOTALS_CHECK,
        "Every rollup row's totals (items published, new followers, engagements, reach, "
        "impressions) and day counts equal the sum of its account_kpis_daily rows of the "
        "period, recomputed in SQL; every subject with daily rows has a rollup row and no "
        "rollup row lacks daily rows. Blocking.",
        kpi_rollup_checks.totals_not_sum_of_days,
        dg.AssetCheckSeverity.ERROR,
        True,
    ),
    _RollupCheck(
        RATE_CHECK,
        f"WARN: every engagement rate is within [0, {RATE_UPPER_BOUND:g}] (a negative one needs "
        "a platform recount over the period, a higher one usually means a recount too).",
        kpi_rollup_checks.rates_out_of_bounds,
        dg.AssetCheckSeverity.WARN,
        False,
    ),
)


def rollup_check_specs(asset: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            check.name, asset=asset, description=check.description, blocking=check.blocking
        )
        for check in ROLLUP_CHECKS
    ]


def run_rollup_checks(
    engine: sa.Engine,
    asset: dg.AssetKey,
    grain: str,
    selected: Iterable[dg.AssetCheckKey],
    starts: Sequence[dt.date],
    today: dt.date | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """The results of the `selected` checks of `asset` over the periods starting on `starts`
    (none: the current period and the one before, UTC)."""
    wanted = set(selected)
    checks = [c for c in ROLLUP_CHECKS if dg.AssetCheckKey(asset, c.name) in wanted]
    if not checks:
        return
    if not starts:
        current = periods.period_start(grain, today or dt.datetime.now(dt.UTC).date())
        starts = [periods.period_start(grain, current - dt.timedelta(days=1)), current]
    scope = ", ".join(start.isoformat() for start in starts)
    with engine.connect() as conn:
        for check in checks:
            count, examples = 0, list[dict[str, str]]()
            for start in starts:
                query = check.query(grain, start, periods.period_end(grain, start))
                found = find_violations(conn, query)
                count += found.count
                examples.extend(found.examples)
            yield dg.AssetCheckResult(
                asset_key=asset,
                check_name=check.name,
                passed=count == 0,
                severity=check.severity,
                description=f"{count} violation(s) in the {grain}(s) starting {scope}.",
                metadata={
                    "violations": count,
                    "examples": dg.MetadataValue.json(examples[:EXAMPLES]),
                    "periods": scope,
                },
            )
