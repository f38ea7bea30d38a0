"""`social_media_report`: one row per content item across all platforms (the dashboard table).

Partitioned by UTC day like the daily KPIs: partition D rewrites the rows of the items that have
metrics on D, with their latest totals (kpis/social_report.py). Why daily rather than one
unpartitioned table rewritten whole: a refresh then costs what the day's ingestion touched (not
the whole history), it is requested with the day's KPIs (`kpi_job`, launched by the KPI sensor
once ingestion lands: same days, same run), and the partition's metadata plots how many items
and engagements each day refreshed. Totals are the latest whatever the day, so re-materializing
old days, in any order, leaves the table as it was. The check runs in the same step, after the
writes.

It depends on the ingestion assets only: it reads the base tables, not the KPI tables, and the
KPI step records its materializations without outputs, which would make a step depending on it
skip.
"""

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline.defs.assets import (
    CONTENT_DAILY_METRICS,
    CONTENT_METADATA,
)
from analytics_pipeline.defs.kpi_assets import daily_kpi_spec, kpi_days, top_content_markdown
from analytics_pipeline.defs.partitions import BY_DATE
from analytics_pipeline.defs.resources import WarehouseResource
from analytics_pipeline.warehouse import tables
from analytics_pipeline.warehouse.checks_sql import find_violations
from analytics_pipeline.warehouse.social_report import (
    ReportDay,
    refresh_report_day,
    report_row_count,
    report_violations,
)

SOCIAL_MEDIA_REPORT = dg.AssetKey("social_media_report")
REPORT_CHECK = "report_rows_consistent"

social_media_report_spec = daily_kpi_spec(
    SOCIAL_MEDIA_REPORT,
    (
        "Grain: one row per content item across all platforms, in `social_media_report`, with "
        "its LATEST totals: the newest lifetime snapshot (Facebook, Instagram, X) or the sum of "
        "the daily values (LinkedIn; reach NULL: unique members do not add up), engagements, "
        "coverage and rates as in content_performance_daily (NULL = unknown, never 0), format, "
        "caption excerpt, hashtags, permalink, account name, published_at and as_of_date. "
        "Partition D rewrites the rows of the items with metrics on D."
    ),
    tables.social_media_report,
    [
        dg.AssetDep(CONTENT_METADATA, partition_mapping=BY_DATE),
        dg.AssetDep(CONTENT_DAILY_METRICS, partition_mapping=BY_DATE),
    ],
)

REPORT_CHECK_SPEC = dg.AssetCheckSpec(
    REPORT_CHECK,
    asset=SOCIAL_MEDIA_REPORT,
    description=(
        "Every item with metrics on the day has a report row as of that day or later, and no "
        "row has a negative total or rate, coverage contradicting its engagements, or a "
        "`days_summed` contradicting its totals basis."
    ),
)


@dg.multi_asset(
    name="social_media_report",
    specs=[social_media_report_spec],
    check_specs=[REPORT_CHECK_SPEC],
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def social_media_report(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.AssetMaterialization | dg.AssetCheckResult]:
    engine = warehouse.get_engine()
    days = kpi_days(context)
    for day in days:
        with engine.begin() as conn:  # one transaction per day
            result = refresh_report_day(conn, day, dt.datetime.now(dt.UTC))
            table_rows = report_row_count(conn)
        yield _materialization(day, result, table_rows)
    if REPORT_CHECK_SPEC.key in context.selected_asset_check_keys:
        yield report_check(engine, days or [dt.datetime.now(dt.UTC).date()])


def _materialization(day: dt.date, result: ReportDay, table_rows: int) -> dg.AssetMaterialization:
    rows = result.rows
    metadata: dict[str, Any] = {
        "dagster/row_count": len(rows),
        "table_rows": table_rows,
        "rows_written": result.counts.written,
        "top_content": dg.MetadataValue.md(top_content_markdown(rows)),
    }
    if len(rows) and rows["engagements"].notna().any():
        metadata["engagements"] = int(rows["engagements"].sum())
    return dg.AssetMaterialization(
        asset_key=SOCIAL_MEDIA_REPORT, partition=day.isoformat(), metadata=metadata
    )


def report_check(engine: sa.Engine, days: Sequence[dt.date]) -> dg.AssetCheckResult:
    """The check's result over `days` (violations counted per day, up to five examples)."""
    count, examples = 0, list[dict[str, str]]()
    with engine.connect() as conn:
        for day in sorted(days):
            found = find_violations(conn, report_violations(day))
            count += found.count
            examples.extend(found.examples)
    scope = f"{min(days)}..{max(days)}" if len(days) > 1 else days[0].isoformat()
    return dg.AssetCheckResult(
        asset_key=SOCIAL_MEDIA_REPORT,
        check_name=REPORT_CHECK,
        passed=count == 0,
        description=f"{count} violation(s) in {scope}.",
        metadata={
            "violations": count,
            "examples": dg.MetadataValue.json(examples[:5]),
            "scope_days": scope,
        },
    )
