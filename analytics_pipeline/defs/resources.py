"""Dagster resources: the warehouse and the platform clients, with typed configuration.

Every setting is a field of a resource, so the UI's resource view shows what a run uses:
`definitions.py` builds both resources with `from_env()` when the definitions load, reading
`ANALYTICS_WAREHOUSE_URL`, `ANALYTICS_MAX_CONCURRENCY`, `ANALYTICS_MAX_RATE_LIMIT_WAIT_S`,
`ANALYTICS_MAX_RUNS_PER_PLATFORM`, `ANALYTICS_HTTP_*` and
`ANALYTICS_<PLATFORM>_*` (a variable per field: `facebook.post_metrics` is
`ANALYTICS_FACEBOOK_POST_METRICS`, a comma-separated list). A malformed value stops the load with
a message naming the variable.

Secrets are never configuration values: the warehouse URL (it may hold a password) is bound with
`dg.EnvVar` and resolved by the run itself, and access tokens are read at run time from the
variable each integration names.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from typing import Annotated, Any

import dagster as dg
import pydantic
import sqlalchemy as sa
from pydantic import Field, PrivateAttr

from analytics_pipeline.platforms import SUPPORTED_PLATFORMS, create_client, settings_type
from analytics_pipeline.platforms.base import Account, PlatformClient
from analytics_pipeline.platforms.facebook import FacebookSettings
from analytics_pipeline.platforms.http import Pacer, RetryConfig
from analytics_pipeline.platforms.instagram import InstagramSettings
from analytics_pipeline.platforms.linkedin import LinkedInSettings
from analytics_pipeline.platforms.x import XSettings
from analytics_pipeline.settings import (
    ENV_PREFIX,
    SettingsError,
    read_section,
    shown,
    variable_name,
)
from analytics_pipeline.warehouse import default_warehouse_url, make_engine
from analytics_pipeline.warehouse.migrations import pending_migrations

WAREHOUSE_URL_ENV = "ANALYTICS_WAREHOUSE_URL"
DEFAULT_CONCURRENCY = 4
Concurrency = Annotated[int, Field(ge=1, le=64)]
# Rate-limit pauses (usage headers, Retry-After, backoff) of one run attempt, all integrations
# together: what does not fit is deferred to a later run (see http.Pacer).
DEFAULT_MAX_RATE_LIMIT_WAIT_S = 1800.0
WaitBudget = Annotated[float, Field(ge=0, le=86_400)]
# Runs fetching from one platform at once, however launched (warehouse/slots.py); the same
# value as the run queue's per-platform limit (deploy/dagster.yaml).
DEFAULT_MAX_RUNS_PER_PLATFORM = 2
RunsPerPlatform = Annotated[int, Field(ge=1, le=64)]

_HTTP = RetryConfig()
_FACEBOOK = FacebookSettings()
_INSTAGRAM = InstagramSettings()
_LINKEDIN = LinkedInSettings()
_X = XSettings()


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse (SQLAlchemy URL). Refuses to run on a schema that is not migrated."""

    url: str = Field(description="SQLAlchemy URL of the warehouse (PostgreSQL or SQLite).")

    _engine: sa.Engine | None = PrivateAttr(default=None)

    @classmethod
    def from_env(cls) -> WarehouseResource:
        """Bound to `ANALYTICS_WAREHOUSE_URL` when it is set, else the default SQLite file."""
        if os.environ.get(WAREHOUSE_URL_ENV, "").strip():
            return cls(url=dg.EnvVar(WAREHOUSE_URL_ENV))
        return cls(url=default_warehouse_url())

    def get_engine(self) -> sa.Engine:
        if self._engine is None:
            engine = make_engine(self.url)
            pending = pending_migrations(engine)
            if pending:
                engine.dispose()
                raise dg.Failure(
                    description=(
                        f"The warehouse schema is behind ({len(pending)} migration(s) pending: "
                        f"{', '.join(pending)}). Run `analytics-pipeline init-db` with the same "
                        f"{WAREHOUSE_URL_ENV}, then re-run."
                    ),
                    allow_retries=False,
                )
            self._engine = engine
        return self._engine

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


# --- platform configuration (defaults are the clients' own) -----------------------------------


class HttpConfig(dg.Config):
    """The shared retrying HTTP session (`ANALYTICS_HTTP_*`)."""

    max_attempts: int = Field(default=_HTTP.max_attempts, ge=1, le=20, description="Per request.")
    backoff_base_s: float = Field(default=_HTTP.backoff_base_s, ge=0, le=600)
    backoff_max_s: float = Field(default=_HTTP.backoff_max_s, ge=0, le=3600)
    max_wait_s: float = Field(
        default=_HTTP.max_wait_s,
        ge=0,
        le=86_400,
        description="Longest single wait (Retry-After, usage).",
    )
    connect_timeout_s: float = Field(default=_HTTP.connect_timeout_s, gt=0, le=600)
    read_timeout_s: float = Field(default=_HTTP.read_timeout_s, gt=0, le=3600)


class _ApiConfig(dg.Config):
    base_url: str = Field(description="API host, e.g. the sandbox's http://127.0.0.1:8765.")
    api_version: str

    @pydantic.field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or "?" in value:
            raise ValueError("not an http(s) base URL")
        return value.rstrip("/")


class FacebookConfig(_ApiConfig):
    base_url: str = _FACEBOOK.base_url
    api_version: str = _FACEBOOK.api_version
    post_metrics: list[str] = list(_FACEBOOK.post_metrics)
    reel_metrics: list[str] = list(_FACEBOOK.reel_metrics)
    page_metrics: list[str] = list(_FACEBOOK.page_metrics)
    usage_max_pause_s: float = Field(default=_FACEBOOK.usage_max_pause_s, ge=0, le=3600)


class InstagramConfig(_ApiConfig):
    base_url: str = _INSTAGRAM.base_url
    api_version: str = _INSTAGRAM.api_version
    feed_metrics: list[str] = list(_INSTAGRAM.feed_metrics)
    reel_metrics: list[str] = list(_INSTAGRAM.reel_metrics)
    story_metrics: list[str] = list(_INSTAGRAM.story_metrics)
    account_metrics: list[str] = list(_INSTAGRAM.account_metrics)
    usage_max_pause_s: float = Field(default=_INSTAGRAM.usage_max_pause_s, ge=0, le=3600)


class LinkedInConfig(_ApiConfig):
    base_url: str = _LINKEDIN.base_url
    oauth_base_url: str = Field(
        default=_LINKEDIN.oauth_base_url, description="OAuth host (token endpoint)."
    )
    api_version: str = Field(
        default=_LINKEDIN.api_version, description="YYYYMM (LinkedIn-Version)."
    )
    post_metrics: list[str] = list(_LINKEDIN.post_metrics)
    account_metrics: list[str] = list(_LINKEDIN.account_metrics)
    page_size: int = Field(default=_LINKEDIN.page_size, ge=1)
    max_pages: int = Field(default=_LINKEDIN.max_pages, ge=1, le=100_000)
    stats_chunk_size: int = Field(default=_LINKEDIN.stats_chunk_size, ge=1)
    created_slack_days: int = Field(default=_LINKEDIN.created_slack_days, ge=0, le=120)


class XConfig(_ApiConfig):
    base_url: str = _X.base_url
    api_version: str = _X.api_version
    private_metrics: list[str] = Field(
        default=list(_X.private_metrics), description="User-context field groups, or 'none'."
    )
    field_spelling: str = Field(
        default=_X.field_spelling,
        description="'tweet' (tweet.fields, X's docs) or 'post' (post.fields, OpenAPI 2.167).",
    )


class PlatformsResource(dg.ConfigurableResource):
    """Creates platform clients from the configuration below (one section per platform)."""

    max_concurrency: Concurrency = Field(
        default=DEFAULT_CONCURRENCY, description="Integrations fetched at once inside a run."
    )
    max_rate_limit_wait_s: WaitBudget = Field(
        default=DEFAULT_MAX_RATE_LIMIT_WAIT_S,
        description="Total rate-limit pauses per run attempt; what does not fit is deferred.",
    )
    max_runs_per_platform: RunsPerPlatform = Field(
        default=DEFAULT_MAX_RUNS_PER_PLATFORM,
        description="Runs fetching from one platform at once, however they were launched "
        "(the others wait for a slot); keep it equal to the run queue's per-platform limit.",
    )
    http: HttpConfig = HttpConfig()
    facebook: FacebookConfig = FacebookConfig()
    instagram: InstagramConfig = InstagramConfig()
    linkedin: LinkedInConfig = LinkedInConfig()
    x: XConfig = XConfig()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PlatformsResource:
        """Every field from its `ANALYTICS_*` variable (defaults when unset), validated now."""
        environ = os.environ if environ is None else environ
        top = read_section(_TopLevel, ENV_PREFIX, environ)
        sections: dict[str, Any] = {
            name: read_section(_section_type(name), _prefix(name), environ)
            for name in ("http", *SUPPORTED_PLATFORMS)
        }
        resource = cls(
            max_concurrency=top.max_concurrency,
            max_rate_limit_wait_s=top.max_rate_limit_wait_s,
            max_runs_per_platform=top.max_runs_per_platform,
            **sections,
        )
        resource.validate_settings()
        return resource

    def settings_for(self, platform: str) -> Any:
        """The platform client's settings (a frozen dataclass) from this configuration."""
        values = _client_values(getattr(self, platform))
        retry = RetryConfig(**self.http.model_dump())
        return settings_type(platform)(**values, retry=retry)

    def validate_settings(self) -> None:
        """Builds every platform's settings now, so a bad value fails at load, not mid-run.

        The clients check what only they know (API version formats, metric names); each field
        is tried on its own so that the error names its variable."""
        for platform in SUPPORTED_PLATFORMS:
            defaults = settings_type(platform)()
            for name, value in _client_values(getattr(self, platform)).items():
                try:
                    dataclasses.replace(defaults, **{name: value})
                except ValueError as exc:
                    variable = variable_name(_prefix(platform), name)
                    text = ",".join(value) if isinstance(value, tuple) else value
                    raise SettingsError(f"{variable}={shown(text)}: {exc}.") from None

    def create_client(self, account: Account, pacer: Pacer | None = None) -> PlatformClient:
        """A fresh client for `account` (own HTTP session and call counter), for one worker;
        its pauses go through the run's `pacer` (stop, wait budget) when one is given."""
        return create_client(account, self.settings_for(account.platform), sleep=pacer)

    def pacer(self, stop: threading.Event, waited_s: float = 0.0) -> Pacer:
        """The pacing of one run attempt: pauses wake on `stop`, capped by the wait budget of
        the whole run (`waited_s`: what its earlier attempts waited)."""
        return Pacer(stop, self.max_rate_limit_wait_s, waited_s)


class _TopLevel(pydantic.BaseModel):
    """The resource's own (not per-section) fields, as read from `ANALYTICS_*`."""

    max_concurrency: Concurrency = DEFAULT_CONCURRENCY
    max_rate_limit_wait_s: WaitBudget = DEFAULT_MAX_RATE_LIMIT_WAIT_S
    max_runs_per_platform: RunsPerPlatform = DEFAULT_MAX_RUNS_PER_PLATFORM


def _client_values(section: dg.Config) -> dict[str, Any]:
    """A configuration section as its client's settings take it (lists become tuples)."""
    return {
        name: tuple(value) if isinstance(value, list) else value
        for name, value in section.model_dump().items()
    }


def _section_type(name: str) -> type[dg.Config]:
    section = PlatformsResource.model_fields[name].annotation
    assert isinstance(section, type) and issubclass(section, dg.Config), name
    return section


def _prefix(section: str) -> str:
    return f"{ENV_PREFIX}{section.upper()}_"
