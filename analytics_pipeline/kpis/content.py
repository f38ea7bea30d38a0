"""`content_performance_daily`: what each content item got on one UTC day, with its rates.

Input (`warehouse.kpis.read_content_day`): one row per content_metrics_daily row of the day, with
the item's platform-neutral columns (platform, format, published_at), its per-day values from the
`content_metrics_daily_change` view (`<metric>_on_day`) and the stored values (`<metric>`).

Per-day values, not lifetime totals: a day's KPIs then add up to a week's or a month's, and
LinkedIn (daily values) and the lifetime platforms (differences of two snapshots) mean the same
thing. The view leaves a lifetime item's first observed day NULL (no snapshot the day before);
when that day is the day the item was published, the snapshot IS the day's change (the item had
nothing before it existed), so it is used. Any other missing snapshot stays NULL.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from analytics_pipeline.kpis.definitions import ENGAGEMENT_COLUMNS, ENGAGEMENT_INPUTS

# platform x engagement column: whether the column is one of the platform's inputs.
_INPUT_TABLE = pd.DataFrame(
    {
        name: [name in inputs for inputs in ENGAGEMENT_INPUTS.values()]
        for name in ENGAGEMENT_COLUMNS
    },
    index=list(ENGAGEMENT_INPUTS),
)
# The per-day metrics a KPI row reads.
DAY_METRICS: tuple[str, ...] = (*ENGAGEMENT_COLUMNS, "reach", "impressions", "views")
KEY_COLUMNS: tuple[str, ...] = (
    "organization_id",
    "integration_id",
    "external_content_id",
    "metric_date",
)
INPUT_COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS,
    "platform",
    "format",
    "published_at",
    "value_kind",
    "counter_decreased",
    *DAY_METRICS,
    *(f"{name}_on_day" for name in DAY_METRICS),
)
OUTPUT_COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS,
    "platform",
    "format",
    "published_at",
    "engagements",
    "engagement_inputs_known",
    "engagement_inputs_expected",
    "reach",
    "impressions",
    "views",
    "engagement_rate_on_reach",
    "engagement_rate_on_impressions",
    "counter_decreased",
)


def content_performance(inputs: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """One KPI row per input row (see the module docstring), in OUTPUT_COLUMNS order."""
    if inputs.empty:
        return pd.DataFrame(columns=list(OUTPUT_COLUMNS))
    values = day_values(inputs, day)
    engagements, known, expected = engagement_totals(inputs["platform"], values)
    result = inputs[[*KEY_COLUMNS, "platform", "format", "published_at"]].copy()
    result["engagements"] = engagements.astype("Int64")
    result["engagement_inputs_known"] = known.astype("int64")
    result["engagement_inputs_expected"] = expected.astype("int64")
    for name in ("reach", "impressions", "views"):
        result[name] = values[name].astype("Int64")
    result["engagement_rate_on_reach"] = rate(engagements, values["reach"])
    result["engagement_rate_on_impressions"] = rate(engagements, values["impressions"])
    result["counter_decreased"] = inputs["counter_decreased"].fillna(False).astype(bool)
    return result.reset_index(drop=True)


def day_values(inputs: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The per-day value of each DAY_METRICS column (float, NaN = unknown)."""
    published_today = (inputs["value_kind"] == "lifetime_snapshot") & (
        published_dates(inputs["published_at"]) == day
    )
    values = pd.DataFrame(index=inputs.index)
    for name in DAY_METRICS:
        on_day = pd.to_numeric(inputs[f"{name}_on_day"], errors="raise").astype("float64")
        stored = pd.to_numeric(inputs[name], errors="raise").astype("float64")
        values[name] = on_day.where(~(published_today & on_day.isna()), stored)
    return values


def published_dates(published_at: pd.Series) -> pd.Series:
    """The UTC day of each (aware) publication timestamp."""
    return pd.to_datetime(published_at, utc=True).dt.date


def engagement_totals(
    platforms: pd.Series, values: pd.DataFrame
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Per row: the sum of the platform's reported engagement inputs (NaN when none was), how
    many of them were reported, and how many the platform has."""
    included = _INPUT_TABLE.reindex(platforms.to_numpy()).fillna(False).astype(bool)
    included.index = values.index
    inputs = values[list(ENGAGEMENT_COLUMNS)].where(included)
    return inputs.sum(axis=1, min_count=1), inputs.notna().sum(axis=1), included.sum(axis=1)


def rate(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator; NaN (NULL) when either is unknown or the denominator <= 0."""
    valid = numerator.notna() & denominator.notna() & (denominator > 0)
    result = pd.Series(np.nan, index=numerator.index, dtype="float64")
    result[valid] = numerator[valid] / denominator[valid]
    return result
