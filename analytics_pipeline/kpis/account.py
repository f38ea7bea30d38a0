"""`account_kpis_daily`: one row per integration per UTC day.

Input (`warehouse.kpis.read_account_day`): one row per tracked integration with its
account_metrics_daily values of the day, the followers snapshot of the day before and the number
of content items published that day; plus the day's `content_performance_daily` rows.

An integration gets a row for a day when it has an account_metrics_daily row, a content metrics
row or a published item that day: a day with nothing at all is absent, not a row of zeros.
- followers_total, new_followers, reach, impressions: the account's values of the day as stored
  (NULL = not reported);
- follower_growth: followers_total(day) - followers_total(day before), NULL when either snapshot
  is missing (never interpolated);
- engagements: the sum of the day's known content engagements (`items_with_engagements` of
  `items_measured` items had one), NULL when none was known;
- engagement_rate: engagements / the account's reach of the day (unique accounts reached, the
  usual denominator), NULL when either is unknown or reach <= 0.
"""

from __future__ import annotations

import pandas as pd

from analytics_pipeline.kpis.content import rate

INPUT_COLUMNS: tuple[str, ...] = (
    "organization_id",
    "integration_id",
    "platform",
    "has_account_row",
    "followers_total",
    "followers_total_before",
    "new_followers",
    "reach",
    "impressions",
    "items_published",
)
OUTPUT_COLUMNS: tuple[str, ...] = (
    "organization_id",
    "integration_id",
    "metric_date",
    "platform",
    "followers_total",
    "follower_growth",
    "new_followers",
    "items_published",
    "items_measured",
    "items_with_engagements",
    "engagements",
    "reach",
    "impressions",
    "engagement_rate",
)
_INTEGER = ("followers_total", "new_followers", "reach", "impressions")


def account_kpis(accounts: pd.DataFrame, content: pd.DataFrame, day: object) -> pd.DataFrame:
    """The day's account KPI rows (see the module docstring), in OUTPUT_COLUMNS order."""
    if accounts.empty:
        return pd.DataFrame(columns=list(OUTPUT_COLUMNS))
    merged = accounts.merge(
        content_totals(content), on=["organization_id", "integration_id"], how="left"
    )
    merged["items_measured"] = merged["items_measured"].fillna(0).astype("int64")
    merged["items_with_engagements"] = merged["items_with_engagements"].fillna(0).astype("int64")
    merged["items_published"] = merged["items_published"].fillna(0).astype("int64")
    active = (
        merged["has_account_row"].astype(bool)
        | (merged["items_measured"] > 0)
        | (merged["items_published"] > 0)
    )
    merged = merged[active].copy()
    numbers = {name: _floats(merged[name]) for name in (*_INTEGER, "followers_total_before")}
    merged["metric_date"] = day
    merged["follower_growth"] = (
        numbers["followers_total"] - numbers["followers_total_before"]
    ).astype("Int64")
    engagements = _floats(merged["engagements"])
    merged["engagements"] = engagements.astype("Int64")
    merged["engagement_rate"] = rate(engagements, numbers["reach"])
    for name in _INTEGER:
        merged[name] = numbers[name].astype("Int64")
    return merged[list(OUTPUT_COLUMNS)].reset_index(drop=True)


def content_totals(content: pd.DataFrame) -> pd.DataFrame:
    """Per integration: items measured, items with known engagements, and their sum."""
    columns = ["organization_id", "integration_id"]
    if content.empty:
        empty = {name: pd.Series(dtype="float64") for name in ("items_measured", "engagements")}
        return pd.DataFrame(
            {
                **{c: pd.Series(dtype="object") for c in columns},
                **empty,
                "items_with_engagements": pd.Series(dtype="float64"),
            }
        )
    frame = content[columns].copy()
    frame["engagements"] = _floats(content["engagements"])
    grouped = frame.groupby(columns, sort=False)["engagements"]
    totals = grouped.agg(items_measured="size", items_with_engagements="count")
    totals["engagements"] = grouped.sum(min_count=1)
    return totals.reset_index()


def _floats(series: pd.Series) -> pd.Series:
    """A numeric column as float64 with NaN for unknown (None, pd.NA)."""
    return pd.to_numeric(series, errors="raise").astype("float64")
