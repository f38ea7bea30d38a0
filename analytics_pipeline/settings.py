"""Settings from `ANALYTICS_*` environment variables, parsed and validated by pydantic.

Environments differ in values, not classes: production and the sandbox run the same code with
different variables. Two kinds of settings:

- `DefinitionSettings`: what the Dagster definitions are built from (the partitions' start date,
  the lookback window, the snapshot cutoff, the refresh interval, the step's retry policy). Read
  ONCE, when `defs/partitions.py` is imported: the only place that reads the environment at
  import time.
- Resource configuration (`defs/resources.py`): every other setting is a typed field of a Dagster
  resource, shown in the UI's resource view. `read_section` fills such a model from the
  variables `<prefix><FIELD>` when the definitions are loaded.

Every malformed value raises `SettingsError` naming the variable, its value and what it accepts,
so `dagster definitions validate`, every run and the CLI fail early and clearly.
"""

from __future__ import annotations

import datetime as dt
import os
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import pydantic
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "ANALYTICS_"
_ECHO_LIMIT = 40

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


class SettingsError(ValueError):
    """A configuration value is missing or malformed."""


class DefinitionSettings(BaseSettings):
    """The values the Dagster definitions (partitions, mappings, retry policy) are built from."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", frozen=True
    )

    partitions_start_date: dt.date = Field(
        default=dt.date(2026, 1, 1), description="First date partition (keep it near go-live)."
    )
    lookback_days: int = Field(default=28, ge=1, le=366, description="Metrics window per day.")
    snapshot_cutoff_hours: int = Field(
        default=3,
        ge=2,  # the 01:30 daily run must fall inside it
        le=12,
        description="Lifetime totals observed before this hour (UTC) are the previous day's.",
    )
    refresh_interval_hours: int = Field(
        default=6, description="Today's partitions are refreshed this often (divides 24)."
    )

    @pydantic.field_validator("refresh_interval_hours")
    @classmethod
    def _divides_a_day(cls, hours: int) -> int:
        if hours < 1 or 24 % hours:
            raise ValueError("must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24)")
        return hours

    step_max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Retries of the ingestion step (transient failures only).",
    )
    step_retry_delay_s: int = Field(
        default=30, ge=0, le=3600, description="First retry delay (exponential, jittered)."
    )
    max_integrations_per_run: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Largest number of integrations one scheduled or CLI run covers: larger "
        "sets are split into several runs, which the run launcher can place on separate "
        "machines.",
    )


def load_definition_settings(environ: Mapping[str, str] | None = None) -> DefinitionSettings:
    """`DefinitionSettings` from `environ` (default: the process environment)."""
    try:
        if environ is None:
            return DefinitionSettings()
        values = _section_values(DefinitionSettings, ENV_PREFIX, environ)
        return DefinitionSettings.model_validate(values)
    except pydantic.ValidationError as exc:
        raise _settings_error(exc, ENV_PREFIX) from None


def read_section(
    model: type[ModelT], prefix: str, environ: Mapping[str, str] | None = None
) -> ModelT:
    """`model` with each field taken from the variable `<prefix><FIELD>` when it is set.

    Unset or blank variables keep the model's default. A field typed as a list reads a
    comma-separated value ("a, b"). Raises `SettingsError` naming the variable."""
    values = _section_values(model, prefix, os.environ if environ is None else environ)
    try:
        return model.model_validate(values)
    except pydantic.ValidationError as exc:
        raise _settings_error(exc, prefix) from None


def variable_name(prefix: str, field: str) -> str:
    """The environment variable of `field` in a section read with `prefix`."""
    return f"{prefix}{field.upper()}"


def shown(value: object) -> str:
    """A refused value for an error message: quoted if short, else only its length (a long
    value may be a token pasted by mistake: no part of it is echoed)."""
    text = str(value)
    if len(text) > _ECHO_LIMIT:
        return f"a value of {len(text)} characters (not shown)"
    return repr(text)


def _section_values(
    model: type[pydantic.BaseModel], prefix: str, environ: Mapping[str, str]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        raw = environ.get(variable_name(prefix, name), "").strip()
        if not raw:
            continue
        if typing.get_origin(field.annotation) in (list, tuple):
            items = [part.strip() for part in raw.split(",") if part.strip()]
            if not items:
                raise SettingsError(
                    f"{variable_name(prefix, name)} is set but lists nothing; unset it to use "
                    "the defaults."
                )
            values[name] = items
        else:
            values[name] = raw
    return values


def _settings_error(exc: pydantic.ValidationError, prefix: str) -> SettingsError:
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "?"
        problems.append(
            f"{variable_name(prefix, field)}={shown(error.get('input'))}: {error['msg']}"
        )
    return SettingsError("; ".join(problems) + ".")
