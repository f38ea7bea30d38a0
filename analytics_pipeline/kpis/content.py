"""`content_performance_daily`: what each content item got on one UTC day, with its rates.

Input (`warehouse.kpis.read_content_day`): one row per content_metrics_daily row of the day, with
the item's platform-neutral columns (platform, format, published_at), its stored values
(`<metric>`) and the same item's 'lifetime_snapshot' values of the day before (`<metric>_before`,
NULL when there is no such row).

Per-day values, not lifetime totals: a day's KPIs then add up to a week's or a month's, and
LinkedIn (daily values) and the lifetime platforms (differences of two snapshots) mean the same
thing. `day_changes` computes exactly what the `content_metrics_daily_change` view defines
(tables.py; a test compares them): reading the stored values and the day before's instead of
joining the view halves the SQL work of the read (the view's self-join repeats the row's own
lookup and evaluates its CASEs per row). The view leaves a lifetime item's first observed day
NULL (no snapshot the day before); when that day is the day the item was published, the
snapshot IS the day's change (the item had nothing before it existed), so it is used. Any
other missing snapshot stays NULL.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from analytics_pipeline.kpis.definitions import ENGAGEMENT_COLUMNS, ENGAGEMENT_INPUTS
from analytics_pipeline.records import METRIC_FIELDS, ValueKind

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
    *METRIC_FIELDS,
    *(f"{name}_before" for name in METRIC_FIELDS),
)
# The INPUT_COLUMNS that hold numbers (NULL = unknown).
NUMERIC_INPUTS = frozenset((*METRIC_FIELDS, *(f"{name}_before" for name in METRIC_FIELDS)))
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
    changes = day_changes(inputs)
    values = day_values(inputs, changes, day)
    result = inputs[[*KEY_COLUMNS, "platform", "format", "published_at"]].copy()
    for name, column in engagement_kpis(inputs["platform"], values).items():
        result[name] = column
    for name in ("reach", "impressions", "views"):
        result[name] = values[name].astype("Int64")
    result["counter_decreased"] = changes["counter_decreased"].to_numpy()
    return result[list(OUTPUT_COLUMNS)].reset_index(drop=True)


def engagement_kpis(platforms: pd.Series, values: pd.DataFrame) -> dict[str, pd.Series]:
    """engagements, engagement_inputs_known/_expected and the rates on reach and on impressions
    of `values` (one row per item: the DAY_METRICS columns, NaN = unknown)."""
    engagements, known, expected = engagement_totals(platforms, values)
    return {
        "engagements": engagements.astype("Int64"),
        "engagement_inputs_known": known.astype("int64"),
        "engagement_inputs_expected": expected.astype("int64"),
        "engagement_rate_on_reach": rate(engagements, values["reach"]),
        "engagement_rate_on_impressions": rate(engagements, values["impressions"]),
    }


def day_changes(inputs: pd.DataFrame) -> pd.DataFrame:
    """The `content_metrics_daily_change` view's values of each row: `<metric>_on_day` (float,
    NaN = NULL) for every METRIC_FIELDS column, and `counter_decreased`.

    'daily' rows: the stored value. 'lifetime_snapshot' rows: stored minus the day before's
    snapshot, NaN when either is unknown; `counter_decreased` when any such difference is
    negative (a comparison with an unknown value is not a decrease)."""
    kind = inputs["value_kind"]
    is_daily = (kind == ValueKind.DAILY.value).to_numpy()
    is_snapshot = (kind == ValueKind.LIFETIME_SNAPSHOT.value).to_numpy()
    changes = pd.DataFrame(index=inputs.index)
    decreased = np.zeros(len(inputs), dtype=bool)
    for name in METRIC_FIELDS:
        stored = _floats(inputs[name])
        before = _floats(inputs[f"{name}_before"])
        difference = np.where(is_snapshot, stored - before, np.nan)
        changes[f"{name}_on_day"] = np.where(is_daily, stored, difference)
        decreased |= stored < before  # False when either is NaN
    changes["counter_decreased"] = is_snapshot & decreased
    return changes


def _floats(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="raise").to_numpy(dtype="float64", na_value=np.nan)


def day_values(inputs: pd.DataFrame, changes: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The per-day value of each DAY_METRICS column (float, NaN = unknown)."""
    published_today = (inputs["value_kind"] == ValueKind.LIFETIME_SNAPSHOT.value) & (
        published_dates(inputs["published_at"]) == day
    )
    values = pd.DataFrame(index=inputs.index)
    for name in DAY_METRICS:
        on_day = changes[f"{name}_on_day"]
        stored = pd.Series(_floats(inputs[name]), index=inputs.index)
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
