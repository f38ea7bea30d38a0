"""Text, CSV and JSON renderings of a rollup (the `analytics-pipeline report` command)."""

from __future__ import annotations

import pandas as pd

FORMATS: tuple[str, ...] = ("table", "csv", "json")
# The columns of the table format (CSV and JSON carry every column).
TABLE_COLUMNS: tuple[str, ...] = (
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
    if output_format == "csv":
        return str(frame.to_csv(index=False)).rstrip("\n")
    if output_format == "json":
        return str(frame.to_json(orient="records", indent=2))
    shown = frame[[c for c in TABLE_COLUMNS if c in frame.columns]].astype(object)
    shown = shown.where(shown.notna(), "NULL")
    if "engagement_rate" in shown:
        shown["engagement_rate"] = [
            v if v == "NULL" else f"{float(v):.2%}" for v in shown["engagement_rate"]
        ]
    for name in ("engagements_avg",):
        if name in shown:
            shown[name] = [v if v == "NULL" else f"{float(v):.1f}" for v in shown[name]]
    return str(shown.to_string(index=False))
