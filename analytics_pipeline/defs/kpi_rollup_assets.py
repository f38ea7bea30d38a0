"""The rollup assets: `kpi_rollups_weekly` (ISO weeks, Monday to Sunday, UTC) and
`kpi_rollups_monthly` (calendar months, UTC), both stored in `kpi_rollups`.

A week or month partition depends on the daily KPI partitions of its days
(`TimeWindowPartitionMapping`); it also reads the followers snapshot of the day before it (the
start of its follower growth), which the mapping cannot say without pulling a whole extra
period: `kpi_rollup_automation.py` refreshes the next period when a period's last day changes.
Both start at the period containing the daily partitions' first day and include the period in
progress (`end_offset=1`, as the daily partitions include today), so a week is refreshed every
day it gains. One transaction per period (every organization and scope), idempotent.
"""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from analytics_pipeline.defs.assets import OWNERS, table_metadata
from analytics_pipeline.defs.kpi_assets import KPI_GROUP, TOP_CONTENT_ROWS
from analytics_pipeline.defs.kpi_checks import ACCOUNT_KPIS_DAILY, CONTENT_PERFORMANCE_DAILY
from analytics_pipeline.defs.kpi_rollup_checks import rollup_check_specs, run_rollup_checks
from analytics_pipeline.defs.partitions import SETTINGS, without_beta_warning
from analytics_pipeline.defs.resources import WarehouseResource
from analytics_pipeline.kpis import periods
from analytics_pipeline.warehouse import tables
from analytics_pipeline.warehouse.kpi_rollups import PeriodRollups, refresh_period

KPI_ROLLUPS_WEEKLY = dg.AssetKey("kpi_rollups_weekly")
KPI_ROLLUPS_MONTHLY = dg.AssetKey("kpi_rollups_monthly")
ROLLUP_ASSET_KEYS = {periods.WEEK: KPI_ROLLUPS_WEEKLY, periods.MONTH: KPI_ROLLUPS_MONTHLY}

_FIRST_DAY = SETTINGS.partitions_start_date
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=periods.period_start(periods.WEEK, _FIRST_DAY).isoformat(),
    day_offset=1,  # Monday: ISO weeks
    timezone="UTC",
    end_offset=1,
)
monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=periods.period_start(periods.MONTH, _FIRST_DAY).isoformat(),
    timezone="UTC",
    end_offset=1,
)
ROLLUP_PARTITIONS: dict[str, dg.TimeWindowPartitionsDefinition] = {
    periods.WEEK: weekly_partitions,
    periods.MONTH: monthly_partitions,
}
# A period's days; the first period may begin before the daily partitions, the current one ends
# after today: those days do not exist (yet) and are left out.
_DAYS_OF_PERIOD = without_beta_warning(
    lambda: dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)
)


def _description(grain: str) -> str:
    period = "ISO week (Monday to Sunday, UTC)" if grain == periods.WEEK else "calendar month (UTC)"
    return (
        f"Grain: one row per {period} per organization and scope in `kpi_rollups` "
        f"(period_grain = '{grain}'): scope 'integration' (one row per integration), "
        "'platform' (per platform of the organization) and 'organization'. Days, items "
        "published, totals, averages, minimum and maximum of engagements, reach and "
        "impressions over the known days (`days_with_*`), engagement rate, follower growth "
        "(last snapshot in the period minus the snapshot of the day before it; NULL when either "
        "is missing, and for a platform or organization unless known for every integration), "
        "new followers and the top content by engagements. The period in progress is a "
        "partition too, refreshed as its days land."
    )


def _spec(grain: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        ROLLUP_ASSET_KEYS[grain],
        description=_description(grain),
        partitions_def=ROLLUP_PARTITIONS[grain],
        group_name=KPI_GROUP,
        kinds={"pandas", "sql"},
        skippable=True,
        owners=OWNERS,
        deps=[
            dg.AssetDep(ACCOUNT_KPIS_DAILY, partition_mapping=_DAYS_OF_PERIOD),
            dg.AssetDep(CONTENT_PERFORMANCE_DAILY, partition_mapping=_DAYS_OF_PERIOD),
        ],
        metadata=table_metadata(tables.kpi_rollups),
    )


def build_rollup_asset(grain: str) -> dg.AssetsDefinition:
    """The `grain` rollup asset: each of the step's periods in its own transaction, then its
    checks over those periods."""
    key = ROLLUP_ASSET_KEYS[grain]

    @dg.multi_asset(
        name=f"kpi_{grain}ly_rollups",
        specs=[_spec(grain)],
        check_specs=rollup_check_specs(key),
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def _rollups(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
        engine = warehouse.get_engine()
        starts = period_starts(context)
        for start in starts:
            with engine.begin() as conn:  # one transaction per period
                result = refresh_period(conn, grain, start, dt.datetime.now(dt.UTC))
            yield rollup_materialization(key, result)
        yield from run_rollup_checks(engine, key, grain, context.selected_asset_check_keys, starts)

    return _rollups


def period_starts(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The first days of the step's periods (a range run covers several)."""
    if not context.has_partition_key and not context.has_partition_key_range:
        return []
    return sorted({dt.date.fromisoformat(key) for key in context.partition_keys})


def rollup_materialization(key: dg.AssetKey, result: PeriodRollups) -> dg.AssetMaterialization:
    """The period's row count and business totals (every organization: plottable over periods)
    and a markdown table of its top content."""
    rows = result.rows
    organizations = rows[rows["scope"] == "organization"]
    integrations = rows[rows["scope"] == "integration"]
    metadata: dict[str, Any] = {
        "dagster/row_count": len(rows),
        "rows_written": result.counts.written,
        "rows_deleted": result.deleted,
        "period_end": result.end.isoformat(),
        "items_published": int(organizations["items_published"].sum()) if len(rows) else 0,
    }
    for name in ("engagements_total", "reach_total", "impressions_total", "new_followers_total"):
        metadata.update(_known_sum(name, organizations[name] if len(rows) else pd.Series()))
    growth = integrations["follower_growth"] if len(rows) else pd.Series()
    metadata.update(_known_sum("follower_growth_known", growth))
    metadata["integrations_with_follower_growth"] = int(growth.notna().sum())
    metadata["top_content"] = dg.MetadataValue.md(top_content_markdown(integrations))
    return dg.AssetMaterialization(
        asset_key=key, partition=result.start.isoformat(), metadata=metadata
    )


def _known_sum(name: str, values: pd.Series) -> dict[str, int]:
    """{name: sum} of the known values, or {} when none is known (left out of the plot, not 0)."""
    known = values.dropna()
    return {name: int(known.sum())} if len(known) else {}


def top_content_markdown(integrations: pd.DataFrame, limit: int = TOP_CONTENT_ROWS) -> str:
    """The integrations' top items of the period, most engagements first."""
    known = (
        integrations[integrations["top_content_engagements"].notna()]
        if len(integrations)
        else integrations
    )
    if known.empty:
        return "No content with known engagements in this period."
    top = known.sort_values(["top_content_engagements", "scope_key"], ascending=[False, True]).head(
        limit
    )
    lines = [
        "| organization | platform | integration | content | engagements in the period |",
        "|---|---|---|---|---|",
    ]
    for row in top.itertuples(index=False):
        lines.append(
            f"| {_cell(row.organization_id)} | {row.platform} | {_cell(row.scope_key)} "
            f"| {_cell(row.top_content)} | {int(row.top_content_engagements)} |"
        )
    return "\n".join(lines)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|")


kpi_weekly_rollups = build_rollup_asset(periods.WEEK)
kpi_monthly_rollups = build_rollup_asset(periods.MONTH)
