"""Asset checks: what the warehouse tables promise to dashboards, for the data a run wrote.

They run inside the ingestion step after its writes (declared as check specs of the multi-asset),
so every run verifies what it just changed; each can also be launched alone from the UI.

Scope: a check reads only the integrations and UTC days of the step's partitions (a run covers a
date range x a range of integrations; the scope is that rectangle, the bounding one if the keys
ever formed another shape), through indexes (see `warehouse/checks_sql.py`), so its cost follows
the run, not the warehouse's history. Checks launched alone with partition tags read the
partitions the tags name. A check run without partitions (launched alone from the UI, or any run
without a partition) looks at yesterday and today (UTC) of every tracked integration.

Every result carries the number of violations, up to five example keys and its scope. Every
check can fail; checks that a database constraint makes impossible (duplicate keys) are not
declared.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline.records import AssetName, ContentPartition
from analytics_pipeline.warehouse import checks_sql
from analytics_pipeline.warehouse.checks_sql import CheckScope

# Integration ids listed in a result's metadata (the count is always there).
SHOWN_INTEGRATIONS = 20

DEFAULT_SCOPE_TEXT = "yesterday and today (UTC) for every tracked integration"
_SCOPE_SENTENCE = (
    " Scope: the run's integrations and days; without partitions, " + DEFAULT_SCOPE_TEXT + "."
)


@dataclass(frozen=True)
class _Check:
    asset: AssetName
    name: str
    description: str
    query: Callable[[CheckScope], sa.Select[Any]]
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(dg.AssetKey(self.asset.value), self.name)


CHECKS: tuple[_Check, ...] = (
    _Check(
        AssetName.CONTENT_METADATA,
        "content_matches_integration",
        "Every content_items row published on a day in scope has the organization_id and "
        "platform of its integration in tracked_integrations.",
        checks_sql.content_integration_mismatches,
    ),
    _Check(
        AssetName.CONTENT_DAILY_METRICS,
        "metrics_have_content_item",
        "Every content_metrics_daily row has a matching content_items row (same organization, "
        "integration and external content id; no foreign key enforces it).",
        checks_sql.orphan_metric_rows,
    ),
    _Check(
        AssetName.CONTENT_DAILY_METRICS,
        "no_negative_counts",
        "No stored metric value in content_metrics_daily is negative (NULL = not reported).",
        checks_sql.negative_metric_values,
    ),
    _Check(
        AssetName.CONTENT_DAILY_METRICS,
        "one_value_kind_per_integration_day",
        "All content_metrics_daily rows of one integration and day have the same value_kind "
        "(lifetime_snapshot or daily).",
        checks_sql.mixed_value_kinds,
    ),
    _Check(
        AssetName.CONTENT_DAILY_METRICS,
        "no_decreased_lifetime_counters",
        "WARN: no lifetime counter went down since the day before (`counter_decreased` in "
        "content_metrics_daily_change). Platforms do revise counters; the difference is kept "
        "as observed, and the count tells how often.",
        checks_sql.decreased_counters,
        dg.AssetCheckSeverity.WARN,
    ),
    _Check(
        AssetName.ACCOUNT_DAILY_METRICS,
        "no_negative_account_values",
        "No stored value in account_metrics_daily is negative (NULL = not reported).",
        checks_sql.negative_account_values,
    ),
    _Check(
        AssetName.ACCOUNT_DAILY_METRICS,
        "followers_total_has_observed_at",
        "Every account_metrics_daily row with a followers_total snapshot says when it was "
        "taken (followers_observed_at).",
        checks_sql.followers_without_observed_at,
    ),
)

CHECK_SPECS = [
    dg.AssetCheckSpec(
        check.name, asset=check.asset.value, description=check.description + _SCOPE_SENTENCE
    )
    for check in CHECKS
]


def scope_of(partition_keys: Iterable[str]) -> CheckScope | None:
    """The integrations and days of `partition_keys`; None when there are none."""
    partitions = [ContentPartition.parse(key) for key in partition_keys]
    if not partitions:
        return None
    return CheckScope.of(
        (p.integration_id for p in partitions),
        min(p.day for p in partitions),
        max(p.day for p in partitions),
    )


def run_checks(
    engine: sa.Engine,
    selected: Iterable[dg.AssetCheckKey],
    partition_keys: Iterable[str] | None,
    today: dt.date | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """The results of the `selected` checks over the scope of `partition_keys` (None or empty:
    yesterday and today of every tracked integration; `today` defaults to the UTC date)."""
    wanted = set(selected)
    checks = [check for check in CHECKS if check.key in wanted]
    if not checks:
        return
    scope = scope_of(partition_keys or ())
    source = "the run's partitions"
    with engine.connect() as conn:
        if scope is None:
            scope = checks_sql.default_scope(conn, today or dt.datetime.now(dt.UTC).date())
            source = "no partitions: " + DEFAULT_SCOPE_TEXT
        scope_metadata = _scope_metadata(scope, source)
        for check in checks:
            found = checks_sql.find_violations(conn, check.query(scope))
            yield dg.AssetCheckResult(
                asset_key=check.asset.value,
                check_name=check.name,
                passed=found.count == 0,
                severity=check.severity,
                description=_summary(found, scope),
                metadata={
                    "violations": found.count,
                    "examples": dg.MetadataValue.json(list(found.examples)),
                    **scope_metadata,
                },
            )


def _days_text(scope: CheckScope) -> str:
    if scope.first_day == scope.last_day:
        return scope.first_day.isoformat()
    return f"{scope.first_day.isoformat()}..{scope.last_day.isoformat()}"


def _scope_metadata(scope: CheckScope, source: str) -> dict[str, Any]:
    ids = scope.integration_ids
    shown = list(ids[:SHOWN_INTEGRATIONS])
    if len(ids) > len(shown):
        shown.append(f"... and {len(ids) - len(shown)} more")
    return {
        "scope_days": _days_text(scope),
        "scope_integration_count": len(ids),
        "scope_integrations": dg.MetadataValue.json(shown),
        "scope_source": source,
    }


def _summary(found: checks_sql.Violations, scope: CheckScope) -> str:
    where = f"{len(scope.integration_ids)} integration(s), {_days_text(scope)}"
    if not found.count:
        return f"No violation in {where}."
    return f"{found.count} violation(s) in {where}."
