"""The demo's KPI step: one run of `kpi_job` over the demo's days (what the KPI sensor requests
once ingestion lands), then a short KPI summary per account, read back from the KPI tables (the
same rollup as `analytics-pipeline report`) and `social_media_report`."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from analytics_pipeline.defs import runs
from analytics_pipeline.kpis.rollup import INTEGRATION
from analytics_pipeline.warehouse.kpi_rollups import compute_rollups
from analytics_pipeline.warehouse.social_report import report_items_by_integration

# rollup column -> summary heading
SUMMARY_COLUMNS: dict[str, str] = {
    "scope_key": "integration",
    "platform": "platform",
    "days": "days",
    "items_published": "published",
    "engagements_total": "engagements",
    "reach_total": "reach",
    "impressions_total": "impressions",
    "engagement_rate": "eng. rate",
    "followers_end": "followers",
    "follower_growth": "growth",
    "top_content": "top item",
    "report_items": "report rows",
}


def kpi_summary(engine: sa.Engine, organization_id: str, start: dt.date, end: dt.date) -> str:
    """One line per account of the organization: its KPIs over start..end (NULL = unknown)."""
    with engine.connect() as conn:
        frame = compute_rollups(conn, start, end, [INTEGRATION], organization_id)
        report_items = report_items_by_integration(conn, organization_id)
    if frame.empty:
        return f"No KPI rows for {organization_id} between {start} and {end}."
    frame["report_items"] = [report_items.get(i, 0) for i in frame["scope_key"]]
    shown = frame[list(SUMMARY_COLUMNS)].astype(object)
    shown = shown.where(shown.notna(), "NULL")
    shown["engagement_rate"] = [
        rate if rate == "NULL" else f"{float(rate):.2%}" for rate in shown["engagement_rate"]
    ]
    return str(pd.DataFrame(shown).rename(columns=SUMMARY_COLUMNS).to_string(index=False))


def print_kpis(
    engine: sa.Engine,
    organization_id: str,
    start: dt.date,
    end: dt.date,
    kpi_runs: list[runs.RunSummary],
) -> None:
    """The KPI runs (kpi_job, then the weekly and monthly rollups), then the summary."""
    print("\nKPI runs (what the KPI sensors request once ingestion lands):")
    for run in kpi_runs:
        print(
            f"  {run.job:<26} run {run.run_id[:8]}: {run.status}, "
            f"{run.partitions_materialized} partitions materialized, {run.seconds:.1f}s"
        )
    print(f"KPIs per account, {start} .. {end}:")
    print(kpi_summary(engine, organization_id, start, end))
    print(
        f"Weekly and monthly rollups: `analytics-pipeline report --org {organization_id} "
        f"--from {start} --to {end} --by week` (or `--by month`, `--scope platform`)."
    )
