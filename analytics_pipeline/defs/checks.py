"""Asset checks: what the warehouse tables promise to dashboards.

They run inside the ingestion step after its writes (declared as check specs of the multi-asset),
so every run verifies the tables it just changed; each can also be launched alone from the UI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline.records import AssetName
from analytics_pipeline.warehouse import checks_sql


@dataclass(frozen=True)
class _Check:
    asset: AssetName
    name: str
    description: str
    count_violations: Callable[[sa.Connection], int]

    @property
    def key(self) -> dg.AssetCheckKey:
        return dg.AssetCheckKey(dg.AssetKey(self.asset.value), self.name)


CHECKS: tuple[_Check, ...] = (
    _Check(
        AssetName.CONTENT_METADATA,
        "no_duplicate_content_keys",
        "At most one content_items row per (organization_id, integration_id, external_content_id).",
        checks_sql.duplicate_content_keys,
    ),
    _Check(
        AssetName.CONTENT_DAILY_METRICS,
        "no_duplicate_metric_keys",
        "At most one content_metrics_daily row per (organization, integration, content, day).",
        checks_sql.duplicate_metric_keys,
    ),
    _Check(
        AssetName.CONTENT_DAILY_METRICS,
        "metrics_have_content_item",
        "Every content_metrics_daily row has a matching content_items row.",
        checks_sql.orphan_metric_rows,
    ),
    _Check(
        AssetName.CONTENT_DAILY_METRICS,
        "no_negative_counts",
        "No metric value in content_metrics_daily is negative.",
        checks_sql.negative_metric_values,
    ),
    _Check(
        AssetName.ACCOUNT_DAILY_METRICS,
        "no_duplicate_account_keys",
        "At most one account_metrics_daily row per (organization, integration, day).",
        checks_sql.account_duplicate_keys,
    ),
    _Check(
        AssetName.ACCOUNT_DAILY_METRICS,
        "no_negative_account_values",
        "No value in account_metrics_daily is negative.",
        checks_sql.negative_account_values,
    ),
)

CHECK_SPECS = [
    dg.AssetCheckSpec(check.name, asset=check.asset.value, description=check.description)
    for check in CHECKS
]


def run_checks(
    engine: sa.Engine, selected: Iterable[dg.AssetCheckKey]
) -> Iterator[dg.AssetCheckResult]:
    wanted = set(selected)
    with engine.connect() as conn:
        for check in CHECKS:
            if check.key not in wanted:
                continue
            violations = check.count_violations(conn)
            yield dg.AssetCheckResult(
                asset_key=check.asset.value,
                check_name=check.name,
                passed=violations == 0,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"violations": violations},
            )
