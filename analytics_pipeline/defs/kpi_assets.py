"""The KPI assets: `content_performance_daily` and `account_kpis_daily`, by UTC day.

Both are partitioned by day only (every integration of the day in one partition and one
transaction), so their materialization metadata plots business numbers over time (reach,
engagements, followers of the day) instead of zig-zagging between accounts. A day D depends on
the ingestion partitions D|<every integration> (`MultiToSingleDimensionPartitionMapping` on the
"date" dimension). One step computes both tables (account KPIs sum the content rows of the same
transaction); `kpi_automation.py` requests it after ingestion lands.
"""

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from analytics_pipeline.defs.assets import (
    ACCOUNT_DAILY_METRICS,
    CONTENT_DAILY_METRICS,
    CONTENT_METADATA,
    OWNERS,
    table_metadata,
)
from analytics_pipeline.defs.kpi_checks import (
    ACCOUNT_KPIS_DAILY,
    CONTENT_PERFORMANCE_DAILY,
    KPI_CHECK_SPECS,
    run_kpi_checks,
)
from analytics_pipeline.defs.partitions import BY_DATE, SETTINGS
from analytics_pipeline.defs.resources import WarehouseResource
from analytics_pipeline.warehouse import tables
from analytics_pipeline.warehouse.kpis import DayKpis, refresh_day

KPI_GROUP = "kpis"
TOP_CONTENT_ROWS = 10

kpi_daily_partitions = dg.DailyPartitionsDefinition(
    start_date=SETTINGS.partitions_start_date.isoformat(), timezone="UTC", end_offset=1
)


def daily_kpi_spec(
    key: dg.AssetKey, description: str, table: sa.Table, deps: list[dg.AssetDep]
) -> dg.AssetSpec:
    """A daily KPI (or report) table's asset: partitioned by UTC day, in the KPI group."""
    return dg.AssetSpec(
        key,
        description=description,
        partitions_def=kpi_daily_partitions,
        group_name=KPI_GROUP,
        kinds={"pandas", "sql"},
        skippable=True,
        owners=OWNERS,
        deps=deps,
        metadata=table_metadata(table),
    )


content_performance_daily_spec = daily_kpi_spec(
    CONTENT_PERFORMANCE_DAILY,
    (
        "Grain: one row per content item per UTC day it has metrics, in "
        "`content_performance_daily`. What the item got ON that day (LinkedIn's daily values, "
        "or the difference of two lifetime snapshots; the publication day's first snapshot), "
        "its engagements (the platform's documented inputs that were reported; "
        "`engagement_inputs_known` of `engagement_inputs_expected`), engagement rates on reach "
        "and on impressions, views, and the platform-neutral columns. NULL = an input or a "
        "denominator unknown (or not positive), never 0."
    ),
    tables.content_performance_daily,
    [
        dg.AssetDep(CONTENT_METADATA, partition_mapping=BY_DATE),
        dg.AssetDep(CONTENT_DAILY_METRICS, partition_mapping=BY_DATE),
    ],
)

account_kpis_daily_spec = daily_kpi_spec(
    ACCOUNT_KPIS_DAILY,
    (
        "Grain: one row per tracked integration per UTC day with account or content data, in "
        "`account_kpis_daily`: followers total, follower growth (difference of two daily "
        "snapshots, NULL when either is missing), new followers where reported, items "
        "published, engagements (sum of the day's known content engagements), reach and "
        "impressions (the account's own values of the day) and engagement rate on reach."
    ),
    tables.account_kpis_daily,
    [
        dg.AssetDep(ACCOUNT_DAILY_METRICS, partition_mapping=BY_DATE),
        dg.AssetDep(CONTENT_PERFORMANCE_DAILY),
    ],
)


@dg.multi_asset(
    name="kpi_daily",
    specs=[content_performance_daily_spec, account_kpis_daily_spec],
    check_specs=KPI_CHECK_SPECS,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def kpi_daily(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
    engine = warehouse.get_engine()
    days = kpi_days(context)
    for day in days:
        with engine.begin() as conn:  # one transaction per day
            result = refresh_day(conn, day, dt.datetime.now(dt.UTC))
        yield from _materializations(day, result)
    yield from run_kpi_checks(engine, context.selected_asset_check_keys, days)


def kpi_days(context: dg.AssetExecutionContext) -> list[dt.date]:
    """The UTC days of the step's partitions (a range run covers several)."""
    if not context.has_partition_key and not context.has_partition_key_range:
        return []
    return sorted({dt.date.fromisoformat(key) for key in context.partition_keys})


def _materializations(day: dt.date, result: DayKpis) -> Iterator[dg.AssetMaterialization]:
    top = dg.MetadataValue.md(top_content_markdown(result.content_rows))
    content, accounts = result.content_rows, result.account_rows
    yield dg.AssetMaterialization(
        asset_key=CONTENT_PERFORMANCE_DAILY,
        partition=day.isoformat(),
        metadata={
            "dagster/row_count": len(content),
            "rows_written": result.content_counts.written,
            **_known_total("engagements", content, "engagements"),
            **_known_total("reach", content, "reach"),
            **_known_total("views", content, "views"),
            "top_content": top,
        },
    )
    yield dg.AssetMaterialization(
        asset_key=ACCOUNT_KPIS_DAILY,
        partition=day.isoformat(),
        metadata={
            "dagster/row_count": len(accounts),
            "rows_written": result.account_counts.written,
            **_known_total("followers_total", accounts, "followers_total"),
            **_known_total("follower_growth", accounts, "follower_growth"),
            **_known_total("reach", accounts, "reach"),
            **_known_total("impressions", accounts, "impressions"),
            **_known_total("engagements", accounts, "engagements"),
            "items_published": int(accounts["items_published"].sum()) if len(accounts) else 0,
            "top_content": top,
        },
    )


def _known_total(name: str, frame: pd.DataFrame, column: str) -> dict[str, Any]:
    """{name: the sum of the known values} (plottable), or {} when no value is known: an
    unknown total is left out of the plot rather than drawn as 0."""
    if frame.empty or frame[column].isna().all():
        return {}
    return {name: int(frame[column].sum())}


def top_content_markdown(content: pd.DataFrame, limit: int = TOP_CONTENT_ROWS) -> str:
    """A markdown table of the day's content with the most engagements."""
    known = content[content["engagements"].notna()] if len(content) else content
    if known.empty:
        return "No content with known engagements on this day."
    top = known.sort_values(
        ["engagements", "integration_id", "external_content_id"],
        ascending=[False, True, True],
    ).head(limit)
    lines = [
        "| platform | integration | content | format | engagements | rate on reach |",
        "|---|---|---|---|---|---|",
    ]
    for row in top.itertuples(index=False):
        rate = row.engagement_rate_on_reach
        rate_text = "" if pd.isna(rate) else f"{rate:.2%}"
        lines.append(
            f"| {row.platform} | {_cell(row.integration_id)} | {_cell(row.external_content_id)} "
            f"| {row.format} | {int(row.engagements)} | {rate_text} |"
        )
    return "\n".join(lines)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|")


KPI_ASSET_KEYS: Sequence[dg.AssetKey] = (CONTENT_PERFORMANCE_DAILY, ACCOUNT_KPIS_DAILY)
