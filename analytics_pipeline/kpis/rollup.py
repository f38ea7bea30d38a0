"""Rollups of `account_kpis_daily` over a range of days, per integration (the `report` command).

For each integration with a KPI row in the range:
- `days`: KPI rows in the range; totals (`*_total`) are sums of the KNOWN daily values, NULL when
  no day was known; `*_avg`, `*_min`, `*_max` are over the known days only (`days_with_*` says
  how many);
- `follower_growth`: followers_total on the last day minus on the day before the first day (the
  same rule as the daily growth, over the range), NULL when either snapshot is missing;
- `engagement_rate`: engagements_total / reach_total over the days where both are known;
- `top_content`: the item with the most engagements over the range (sum of its known daily
  engagements), and that number.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics_pipeline.kpis.content import rate

ACCOUNT_COLUMNS: tuple[str, ...] = (
    "integration_id",
    "metric_date",
    "platform",
    "followers_total",
    "new_followers",
    "items_published",
    "engagements",
    "reach",
    "impressions",
)
CONTENT_COLUMNS: tuple[str, ...] = ("integration_id", "external_content_id", "engagements")
_STATS = ("engagements", "reach", "impressions")
_INTEGER_COLUMNS = frozenset(
    {
        "days",
        "items_published",
        "followers_start",
        "followers_end",
        "follower_growth",
        "top_content_engagements",
        *(f"days_with_{name}" for name in _STATS),
    }
)


def rollup(
    accounts: pd.DataFrame, content: pd.DataFrame, first: dt.date, last: dt.date
) -> pd.DataFrame:
    """One row per integration (see the module docstring), sorted by integration id."""
    in_range = accounts[(accounts["metric_date"] >= first) & (accounts["metric_date"] <= last)]
    if in_range.empty:
        return pd.DataFrame()
    rows = [
        _integration_rollup(integration_id, group, accounts, first, last)
        for integration_id, group in in_range.groupby("integration_id", sort=True)
    ]
    result = pd.DataFrame(rows).merge(_top_content(content), on="integration_id", how="left")
    for name in result.columns:
        if name in _INTEGER_COLUMNS or name.endswith(("_total", "_min", "_max")):
            result[name] = _floats(result[name]).astype("Int64")
    return result


def _integration_rollup(
    integration_id: str, days: pd.DataFrame, accounts: pd.DataFrame, first: dt.date, last: dt.date
) -> dict[str, object]:
    row: dict[str, object] = {
        "integration_id": integration_id,
        "platform": days["platform"].iloc[0],
        "days": len(days),
        "items_published": int(days["items_published"].sum()),
        "new_followers_total": _total(days["new_followers"]),
    }
    for name in _STATS:
        values = _floats(days[name]).dropna()
        row[f"days_with_{name}"] = len(values)
        row[f"{name}_total"] = int(values.sum()) if len(values) else None
        row[f"{name}_avg"] = float(values.mean()) if len(values) else None
        row[f"{name}_min"] = int(values.min()) if len(values) else None
        row[f"{name}_max"] = int(values.max()) if len(values) else None
    both = days[_floats(days["engagements"]).notna() & _floats(days["reach"]).notna()]
    ratio = rate(
        pd.Series([_floats(both["engagements"]).sum()]), pd.Series([_floats(both["reach"]).sum()])
    )
    row["engagement_rate"] = None if both.empty or pd.isna(ratio.iloc[0]) else float(ratio.iloc[0])
    mine = accounts[accounts["integration_id"] == integration_id]
    start = _followers_on(mine, first - dt.timedelta(days=1))
    end = _followers_on(mine, last)
    row["followers_start"], row["followers_end"] = start, end
    row["follower_growth"] = None if start is None or end is None else end - start
    return row


def _followers_on(rows: pd.DataFrame, day: dt.date) -> int | None:
    values = _floats(rows.loc[rows["metric_date"] == day, "followers_total"]).dropna()
    return int(values.iloc[0]) if len(values) else None


def _total(series: pd.Series) -> int | None:
    values = _floats(series).dropna()
    return int(values.sum()) if len(values) else None


def _top_content(content: pd.DataFrame) -> pd.DataFrame:
    columns = ["integration_id", "top_content", "top_content_engagements"]
    known = content[_floats(content["engagements"]).notna()] if len(content) else content
    if known.empty:
        return pd.DataFrame(columns=columns)
    ordered = known.assign(engagements=_floats(known["engagements"])).sort_values(
        ["integration_id", "engagements", "external_content_id"], ascending=[True, False, True]
    )
    best = ordered.drop_duplicates("integration_id")
    return pd.DataFrame(
        {
            "integration_id": best["integration_id"].to_numpy(),
            "top_content": best["external_content_id"].to_numpy(),
            "top_content_engagements": best["engagements"].astype("int64").to_numpy(),
        }
    )


def _floats(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="raise").astype("float64")
