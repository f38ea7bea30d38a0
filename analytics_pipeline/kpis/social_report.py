"""`social_media_report`: one row per content item across all platforms, with its latest totals.

Input (`warehouse.social_report.read_report_day`): one row per content item that has a
content_metrics_daily row on the refreshed day, with its item columns, its integration's display
name, its NEWEST metrics row (`latest_<metric>`, `as_of_date`, `latest_kind`) and the sums of
its 'daily' rows (`sum_<metric>`, `days_summed`).

Latest totals, by what the platform reports (`totals_basis`):
- 'latest_snapshot' (Facebook, Instagram, X: lifetime counters): the values of the newest
  metrics row, as the platform last reported them; a metric that row lacks is NULL (an older
  snapshot is not carried forward: it would mix dates in one row);
- 'sum_of_daily' (LinkedIn: per-day values): the sum of the item's daily values of every day
  stored (`days_summed` rows; a day without a value adds nothing, a metric no day reported is
  NULL). Reach is NULL: unique members reached per day do not add up to unique members reached.

Engagements, their coverage and the rates are content_performance_daily's definitions
(kpis/definitions.py) applied to those totals: NULL when unknown or the denominator is not
positive, never 0 for unknown. `account_name` is the integration's display name when one was
given at onboarding (NULL when it is just the integration id); `caption_excerpt` is the first
CAPTION_EXCERPT_CHARS characters of the caption.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics_pipeline.kpis.content import DAY_METRICS, engagement_kpis
from analytics_pipeline.records import CAPTION_EXCERPT_CHARS, TotalsBasis, ValueKind

# Totals that do not add up over days: NULL for 'sum_of_daily' items.
NOT_SUMMABLE: tuple[str, ...] = ("reach",)
KEY_COLUMNS: tuple[str, ...] = ("organization_id", "integration_id", "external_content_id")
ITEM_COLUMNS: tuple[str, ...] = (
    "platform",
    "display_name",
    "format",
    "caption",
    "hashtags",
    "permalink",
    "published_at",
)
INPUT_COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS,
    *ITEM_COLUMNS,
    "as_of_date",
    "latest_kind",
    *(f"latest_{name}" for name in DAY_METRICS),
)
SUM_COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS,
    "days_summed",
    *(f"sum_{name}" for name in DAY_METRICS),
)
OUTPUT_COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS,
    "platform",
    "account_name",
    "format",
    "caption_excerpt",
    "hashtags",
    "permalink",
    "published_at",
    "as_of_date",
    "totals_basis",
    "days_summed",
    *DAY_METRICS,
    "engagements",
    "engagement_inputs_known",
    "engagement_inputs_expected",
    "engagement_rate_on_reach",
    "engagement_rate_on_impressions",
)


def social_media_report(items: pd.DataFrame, sums: pd.DataFrame) -> pd.DataFrame:
    """One report row per item of `items` (see the module docstring), in OUTPUT_COLUMNS order."""
    if items.empty:
        return pd.DataFrame(columns=list(OUTPUT_COLUMNS))
    frame = items.merge(sums, on=list(KEY_COLUMNS), how="left", validate="one_to_one")
    summed = (frame["latest_kind"] == ValueKind.DAILY.value).to_numpy()
    totals = pd.DataFrame(index=frame.index)
    for name in DAY_METRICS:
        latest = _floats(frame[f"latest_{name}"])
        added = np.nan if name in NOT_SUMMABLE else _floats(frame[f"sum_{name}"])
        totals[name] = np.where(summed, added, latest)
    result = frame[list(KEY_COLUMNS)].copy()
    result["platform"] = frame["platform"]
    result["account_name"] = frame["display_name"].where(
        frame["display_name"] != frame["integration_id"], None
    )
    result["format"] = frame["format"]
    result["caption_excerpt"] = frame["caption"].map(_excerpt, na_action="ignore")
    for name in ("hashtags", "permalink", "published_at", "as_of_date"):
        result[name] = frame[name]
    result["totals_basis"] = np.where(
        summed, TotalsBasis.SUM_OF_DAILY.value, TotalsBasis.LATEST_SNAPSHOT.value
    )
    result["days_summed"] = pd.Series(
        np.where(summed, _floats(frame["days_summed"]), np.nan), index=frame.index
    ).astype("Int64")
    for name in DAY_METRICS:
        result[name] = totals[name].astype("Int64")
    for name, column in engagement_kpis(frame["platform"], totals).items():
        result[name] = column
    return result[list(OUTPUT_COLUMNS)].reset_index(drop=True)


def _excerpt(caption: str) -> str:
    return caption[:CAPTION_EXCERPT_CHARS]


def _floats(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="raise").to_numpy(dtype="float64", na_value=np.nan)
