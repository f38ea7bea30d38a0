"""Rollups of `account_kpis_daily` over a range of days (a week, a month, or the `report` range),
per integration, per organization or per platform of an organization (`scope`).

One row per scope member with a KPI row in the range:
- `integrations`: integrations with a KPI row in the range; `days`: days with one;
- `items_published`: the sum; `new_followers_total`: sum of the known values (NULL if none);
- engagements, reach, impressions: a scope's value of a day is the sum of its integrations' known
  values that day (NULL when none was known); `*_total` sums them, `*_avg`, `*_min`, `*_max` are
  over the days with a known value (`days_with_*` says how many), NULL when there is none. So
  `*_total` = the sum of the range's known daily values of the scope's integrations;
- `engagement_rate`: engagements / reach summed over the integration-days where both are known
  (NULL when none or when that reach is <= 0);
- followers, per integration: `followers_start` = the snapshot of the day before the range,
  `followers_end` = the last snapshot in the range (on `followers_end_date`), `follower_growth`
  = end - start, NULL when either is missing (never interpolated). For an organization or a
  platform they are sums over the integrations, only when EVERY integration of the scope has a
  known growth (`integrations_with_follower_growth` of `integrations`), else NULL;
  `followers_end_date` is then the earliest of the integrations' end dates (growth is measured
  at least up to that day);
- `top_content*`: the item with the most engagements over the range (sum of its known daily
  engagements; ties: integration id, then content id), its integration and that number.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics_pipeline.kpis.content import rate

INTEGRATION, ORGANIZATION, PLATFORM = "integration", "organization", "platform"
SCOPES: tuple[str, ...] = (INTEGRATION, ORGANIZATION, PLATFORM)
_GROUP: dict[str, list[str]] = {
    INTEGRATION: ["organization_id", "integration_id"],
    ORGANIZATION: ["organization_id"],
    PLATFORM: ["organization_id", "platform"],
}
# The column whose value names the scope member (`scope_key`).
SCOPE_KEY_COLUMN: dict[str, str] = {
    INTEGRATION: "integration_id",
    ORGANIZATION: "organization_id",
    PLATFORM: "platform",
}

ACCOUNT_COLUMNS: tuple[str, ...] = (
    "organization_id",
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
CONTENT_COLUMNS: tuple[str, ...] = (
    "organization_id",
    "integration_id",
    "external_content_id",
    "engagements",
)
STATS: tuple[str, ...] = ("engagements", "reach", "impressions")
_STAT_COLUMNS = tuple(
    f"{prefix}{name}{suffix}"
    for name in STATS
    for prefix, suffix in (
        ("days_with_", ""),
        ("", "_total"),
        ("", "_avg"),
        ("", "_min"),
        ("", "_max"),
    )
)
ROLLUP_COLUMNS: tuple[str, ...] = (
    "organization_id",
    "scope",
    "scope_key",
    "platform",
    "integrations",
    "days",
    "items_published",
    "new_followers_total",
    *_STAT_COLUMNS,
    "engagement_rate",
    "followers_start",
    "followers_end",
    "followers_end_date",
    "follower_growth",
    "integrations_with_follower_growth",
    "top_content_integration_id",
    "top_content",
    "top_content_engagements",
)
_FLOAT_COLUMNS = frozenset({"engagement_rate", *(f"{name}_avg" for name in STATS)})
_OBJECT_COLUMNS = frozenset(
    {
        "organization_id",
        "scope",
        "scope_key",
        "platform",
        "followers_end_date",
        "top_content_integration_id",
        "top_content",
    }
)


def rollup(
    accounts: pd.DataFrame,
    content: pd.DataFrame,
    first: dt.date,
    last: dt.date,
    scope: str = INTEGRATION,
) -> pd.DataFrame:
    """One row per member of `scope` (see the module docstring), ROLLUP_COLUMNS, sorted by
    organization and scope key. `accounts` holds ACCOUNT_COLUMNS rows from the day before
    `first` to `last`; `content` one row per item with its engagements summed over the range."""
    if scope not in SCOPES:
        raise ValueError(f"unknown rollup scope {scope!r}")
    dates = accounts["metric_date"]
    in_range = _numbers(accounts[(dates >= first) & (dates <= last)])
    if in_range.empty:
        return pd.DataFrame(columns=list(ROLLUP_COLUMNS))
    group = _GROUP[scope]
    integrations = _integration_followers(accounts, in_range, first)
    result = pd.concat(
        [
            _day_stats(in_range, group),
            _rates(in_range, group),
            _followers(integrations, group),
        ],
        axis=1,
    ).reset_index()
    result = result.merge(_top_content(content, integrations, group), on=group, how="left")
    if scope == INTEGRATION:
        platforms = integrations[["integration_id", "platform"]]
        result = result.merge(platforms, on="integration_id", how="left")
    elif scope == ORGANIZATION:
        result["platform"] = None
    result["scope"] = scope
    result["scope_key"] = result[SCOPE_KEY_COLUMN[scope]]
    return typed(result.sort_values(["organization_id", "scope_key"]).reset_index(drop=True))


def _numbers(frame: pd.DataFrame) -> pd.DataFrame:
    numeric = ("followers_total", "new_followers", "items_published", *STATS)
    return frame.assign(**{name: _floats(frame[name]) for name in numeric})


def _day_stats(in_range: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    """Counts, sums and the per-day statistics of each scope member."""
    by_day = in_range.groupby([*group, "metric_date"], sort=True)
    days = by_day[[*STATS, "new_followers"]].sum(min_count=1)
    days["items_published"] = by_day["items_published"].sum()
    per_member = days.groupby(level=group, sort=True)
    stats = pd.DataFrame(
        {
            "integrations": in_range.groupby(group, sort=True)["integration_id"].nunique(),
            "days": per_member.size(),
            "items_published": per_member["items_published"].sum(),
            "new_followers_total": per_member["new_followers"].sum(min_count=1),
        }
    )
    for name in STATS:
        values = per_member[name]
        stats[f"days_with_{name}"] = values.count()
        stats[f"{name}_total"] = values.sum(min_count=1)
        stats[f"{name}_avg"] = values.mean()
        stats[f"{name}_min"] = values.min()
        stats[f"{name}_max"] = values.max()
    return stats


def _rates(in_range: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    both = in_range[in_range["engagements"].notna() & in_range["reach"].notna()]
    sums = both.groupby(group, sort=True)[["engagements", "reach"]].sum()
    return pd.DataFrame({"engagement_rate": rate(sums["engagements"], sums["reach"])})


def _integration_followers(
    accounts: pd.DataFrame, in_range: pd.DataFrame, first: dt.date
) -> pd.DataFrame:
    """Per integration of the range: its followers at the start and end, and the growth."""
    members = in_range.drop_duplicates("integration_id")[
        ["organization_id", "integration_id", "platform"]
    ].set_index("integration_id")
    before = accounts[accounts["metric_date"] == first - dt.timedelta(days=1)]
    start = _floats(before.set_index("integration_id")["followers_total"])
    known = in_range[in_range["followers_total"].notna()].sort_values("metric_date")
    end = known.drop_duplicates("integration_id", keep="last").set_index("integration_id")
    members["followers_start"] = start.reindex(members.index)
    members["followers_end"] = end["followers_total"].reindex(members.index)
    members["followers_end_date"] = pd.to_datetime(end["metric_date"]).reindex(members.index)
    members["follower_growth"] = members["followers_end"] - members["followers_start"]
    return members.reset_index()


def _followers(integrations: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    grouped = integrations.groupby(group, sort=True)
    size = grouped.size()

    def all_known(name: str) -> pd.Series:
        return grouped[name].sum(min_count=1).where(grouped[name].count() == size)

    return pd.DataFrame(
        {
            "followers_start": all_known("followers_start"),
            "followers_end": all_known("followers_end"),
            "followers_end_date": grouped["followers_end_date"]
            .min()
            .where(grouped["followers_end"].count() == size),
            "follower_growth": all_known("follower_growth"),
            "integrations_with_follower_growth": grouped["follower_growth"].count(),
        }
    )


def _top_content(
    content: pd.DataFrame, integrations: pd.DataFrame, group: list[str]
) -> pd.DataFrame:
    columns = [*group, "top_content_integration_id", "top_content", "top_content_engagements"]
    if content.empty:
        return pd.DataFrame(columns=columns)
    known = content[_floats(content["engagements"]).notna()][
        ["integration_id", "external_content_id", "engagements"]
    ].merge(integrations[["organization_id", "integration_id", "platform"]], on="integration_id")
    if known.empty:
        return pd.DataFrame(columns=columns)
    known["engagements"] = _floats(known["engagements"])
    ordered = known.sort_values(
        [*group, "engagements", "integration_id", "external_content_id"],
        ascending=[*(True for _ in group), False, True, True],
    )
    best = ordered.drop_duplicates(group).rename(
        columns={"external_content_id": "top_content", "engagements": "top_content_engagements"}
    )
    best["top_content_integration_id"] = best["integration_id"]
    return best[columns]


def typed(result: pd.DataFrame) -> pd.DataFrame:
    """ROLLUP_COLUMNS in order: counts and totals Int64, averages and the rate float64, dates as
    `datetime.date` (None when unknown). Also for rollups read back from the warehouse."""
    out = pd.DataFrame(index=result.index)
    for name in ROLLUP_COLUMNS:
        if name == "followers_end_date":
            out[name] = [None if pd.isna(v) else pd.Timestamp(v).date() for v in result[name]]
        elif name in _OBJECT_COLUMNS:
            out[name] = result[name].astype(object).where(result[name].notna(), None)
        elif name in _FLOAT_COLUMNS:
            out[name] = _floats(result[name])
        else:
            out[name] = _floats(result[name]).astype("Int64")
    return out


def _floats(series: pd.Series) -> pd.Series:
    return pd.to_numeric(series, errors="raise").astype("float64")
