"""Settings read from the environment, validated once, with current defaults.

Environments differ in values, not classes: production and the sandbox run the same code with
different `ANALYTICS_*` variables. Every bad value raises `SettingsError` naming the variable and
what it accepts, so `dagster definitions validate` and the CLI fail early and clearly.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_START_DATE = "2026-01-01"
DEFAULT_LOOKBACK_DAYS = 28
DEFAULT_SNAPSHOT_WINDOW_DAYS = 2
DEFAULT_MAX_CONCURRENCY = 4
DEFAULT_STEP_MAX_RETRIES = 2
DEFAULT_STEP_RETRY_DELAY_S = 30


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


@dataclass(frozen=True)
class PipelineSettings:
    partitions_start_date: str
    lookback_days: int
    snapshot_window_days: int
    max_concurrency: int
    step_max_retries: int
    step_retry_delay_s: int


def env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer (allowed {low}..{high}).") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range (allowed {low}..{high}).")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number (allowed {low}..{high}).") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range (allowed {low}..{high}).")
    return value


def _date_setting(env: Mapping[str, str], name: str, default: str) -> str:
    raw = (env.get(name) or default).strip()
    try:
        dt.date.fromisoformat(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a date in YYYY-MM-DD form.") from None
    return raw


def load_pipeline_settings(env: Mapping[str, str] | None = None) -> PipelineSettings:
    env = os.environ if env is None else env
    return PipelineSettings(
        partitions_start_date=_date_setting(
            env, "ANALYTICS_PARTITIONS_START_DATE", DEFAULT_START_DATE
        ),
        lookback_days=env_int(env, "ANALYTICS_LOOKBACK_DAYS", DEFAULT_LOOKBACK_DAYS, 1, 366),
        snapshot_window_days=env_int(
            env, "ANALYTICS_SNAPSHOT_WINDOW_DAYS", DEFAULT_SNAPSHOT_WINDOW_DAYS, 0, 30
        ),
        max_concurrency=env_int(env, "ANALYTICS_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY, 1, 64),
        step_max_retries=env_int(
            env, "ANALYTICS_STEP_MAX_RETRIES", DEFAULT_STEP_MAX_RETRIES, 0, 10
        ),
        step_retry_delay_s=env_int(
            env, "ANALYTICS_STEP_RETRY_DELAY_S", DEFAULT_STEP_RETRY_DELAY_S, 0, 3600
        ),
    )


def env_str(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def env_list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list (e.g. a metric list); blanks dropped, order kept."""
    value = env.get(name)
    if value is None or value.strip() == "":
        return default
    items = tuple(part.strip() for part in value.split(",") if part.strip())
    if not items:
        raise SettingsError(f"{name} is set but lists nothing; unset it to use the defaults.")
    return items


def env_url(env: Mapping[str, str], name: str, default: str) -> str:
    """An http(s) base URL without a trailing slash."""
    value = env_str(env, name, default).rstrip("/")
    if not value.startswith(("http://", "https://")) or "?" in value:
        raise SettingsError(f"{name}={value!r} is not an http(s) base URL.")
    return value
