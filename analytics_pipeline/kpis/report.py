"""Text, CSV and JSON renderings of a rollup (the `analytics-pipeline report` command).

A rollup frame names its subject by `scope` and `scope_key`; the rendering names it as the
report has always done: an `integration_id` column for integration rows, the organization_id or
platform column otherwise (`scope` and `scope_key` are dropped)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

FORMATS: tuple[str, ...] = ("table", "csv", "json")
# The columns of the table format (CSV and JSON carry every column).
TABLE_COLUMNS: tuple[str, ...] = (
    "period_start",
    "organization_id",
    "integration_id",
    "platform",
    "days",
    "items_published",
    "engagements_total",
    "engagements_avg",
    "engagements_min",
    "engagements_max",
    "reach_total",
    "impressions_total",
    "engagement_rate",
    "followers_end",
    "follower_growth",
    "new_followers_total",
    "top_content",
)


def render(frame: pd.DataFrame, output_format: str) -> str:
    """The rollup as text; NULL (unknown) shows as NULL in a table, empty in CSV, null in JSON."""
    frame = _dates_as_text(named(frame))
    if output_format == "csv":
        return str(frame.to_csv(index=False)).rstrip("\n")
    if output_format == "json":
        return str(frame.to_json(orient="records", indent=2))
    shown = frame[[c for c in _table_columns(frame) if c in frame.columns]].astype(object)
    shown = shown.where(shown.notna(), "NULL")
    if "engagement_rate" in shown:
        shown["engagement_rate"] = [
            v if v == "NULL" else f"{float(v):.2%}" for v in shown["engagement_rate"]
        ]
    for name in ("engagements_avg",):
        if name in shown:
            shown[name] = [v if v == "NULL" else f"{float(v):.1f}" for v in shown[name]]
    return str(shown.to_string(index=False))


def named(frame: pd.DataFrame) -> pd.DataFrame:
    """`scope`/`scope_key` replaced by the subject's own column (see the module docstring)."""
    if "scope" not in frame.columns or frame.empty:
        return frame
    named = frame.copy()
    if (named["scope"] == "integration").all():
        named.insert(0, "integration_id", named["scope_key"])
    return named.drop(columns=["scope", "scope_key"])


def _table_columns(frame: pd.DataFrame) -> list[str]:
    """TABLE_COLUMNS without the organization and the platform where they say nothing: one
    organization per report; organization rows mix platforms."""
    skipped = {"organization_id"}
    if "platform" in frame.columns and frame["platform"].isna().all():
        skipped.add("platform")
    return [name for name in TABLE_COLUMNS if name not in skipped]


def _dates_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates as YYYY-MM-DD (pandas would write them to JSON as epoch milliseconds)."""
    shown = frame.copy()
    for name in shown.columns:
        if shown[name].dtype != "object":
            continue
        shown[name] = [v.isoformat() if isinstance(v, dt.date) else v for v in shown[name]]
    return shown
