"""Dagster resources: the warehouse and the platform clients.

Both are configured from `ANALYTICS_*` environment variables (`from_env`); tests and the demo
build them with explicit values (e.g. the sandbox's URL). Secrets are never resource config:
the warehouse URL goes through `dg.EnvVar` when it comes from the environment, and access tokens
are read at run time from the environment variable each integration names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg
import sqlalchemy as sa
from pydantic import PrivateAttr

from analytics_pipeline.platforms import create_client
from analytics_pipeline.platforms.base import PlatformClient
from analytics_pipeline.platforms.facebook import FacebookSettings
from analytics_pipeline.platforms.http import RetryConfig
from analytics_pipeline.settings import SettingsError, env_list, env_str
from analytics_pipeline.warehouse import default_warehouse_url, make_engine
from analytics_pipeline.warehouse.migrations import pending_migrations

WAREHOUSE_URL_ENV = "ANALYTICS_WAREHOUSE_URL"


class WarehouseResource(dg.ConfigurableResource):
    """The SQL warehouse (SQLAlchemy URL). Refuses to run on a schema that is not migrated."""

    url: str

    _engine: sa.Engine | None = PrivateAttr(default=None)

    @classmethod
    def from_env(cls) -> WarehouseResource:
        if os.environ.get(WAREHOUSE_URL_ENV):
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


DEFAULT_FACEBOOK = FacebookSettings()


class PlatformsResource(dg.ConfigurableResource):
    """Base URLs, API versions and metric lists of every platform, plus the retry budget."""

    facebook_base_url: str = DEFAULT_FACEBOOK.base_url
    facebook_api_version: str = DEFAULT_FACEBOOK.api_version
    facebook_post_metrics: list[str] = list(DEFAULT_FACEBOOK.post_metrics)
    # Longest pause taken when usage headers approach 100 % (scaled from the slowdown point).
    facebook_usage_max_pause_s: float = DEFAULT_FACEBOOK.usage_max_pause_s
    http_max_attempts: int = RetryConfig().max_attempts
    http_backoff_base_s: float = RetryConfig().backoff_base_s
    http_backoff_max_s: float = RetryConfig().backoff_max_s
    http_max_wait_s: float = RetryConfig().max_wait_s

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PlatformsResource:
        env = os.environ if env is None else env
        version = env_str(env, "ANALYTICS_FACEBOOK_API_VERSION", DEFAULT_FACEBOOK.api_version)
        if not (version.startswith("v") and version[1:].replace(".", "").isdigit()):
            raise SettingsError(
                f"ANALYTICS_FACEBOOK_API_VERSION={version!r} is not a Graph API version "
                "such as 'v25.0'."
            )
        return cls(
            facebook_base_url=env_str(
                env, "ANALYTICS_FACEBOOK_BASE_URL", DEFAULT_FACEBOOK.base_url
            ),
            facebook_api_version=version,
            facebook_post_metrics=list(
                env_list(env, "ANALYTICS_FACEBOOK_POST_METRICS", DEFAULT_FACEBOOK.post_metrics)
            ),
        )

    def retry_config(self) -> RetryConfig:
        return RetryConfig(
            max_attempts=self.http_max_attempts,
            backoff_base_s=self.http_backoff_base_s,
            backoff_max_s=self.http_backoff_max_s,
            max_wait_s=self.http_max_wait_s,
        )

    def settings_by_platform(self) -> dict[str, object]:
        return {
            "facebook": FacebookSettings(
                base_url=self.facebook_base_url.rstrip("/"),
                api_version=self.facebook_api_version,
                post_metrics=tuple(self.facebook_post_metrics),
                usage_max_pause_s=self.facebook_usage_max_pause_s,
                retry=self.retry_config(),
            )
        }

    def create_client(self, platform: str) -> PlatformClient:
        """A fresh client (own HTTP session and call counter) for one worker."""
        return create_client(platform, self.settings_by_platform())
