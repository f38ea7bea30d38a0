"""Dagster resources: the warehouse and the platform clients.

Both are configured from `ANALYTICS_*` environment variables; environments differ in values,
not classes. Secrets are never resource config: the warehouse URL goes through `dg.EnvVar` when it
comes from the environment, and access tokens are read at run time from the environment variable
each integration names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg
import sqlalchemy as sa
from pydantic import PrivateAttr

from analytics_pipeline.platforms import SUPPORTED_PLATFORMS, create_client, settings_from_env
from analytics_pipeline.platforms.base import PlatformClient
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


class PlatformsResource(dg.ConfigurableResource):
    """Creates platform clients configured by the ANALYTICS_<PLATFORM>_* variables.

    Each platform module reads its own variables (base URL, API version, metric lists; see the
    README), so adding a platform never touches this class. `env_overrides` layers values over
    the process environment: tests and the demo point base URLs at the sandbox with it.
    """

    env_overrides: dict[str, str] = {}

    def settings_env(self) -> Mapping[str, str]:
        return {**os.environ, **self.env_overrides}

    def validate_settings(self) -> None:
        """Parses every platform's settings now, so a bad value fails at load, not mid-run."""
        env = self.settings_env()
        for platform in SUPPORTED_PLATFORMS:
            settings_from_env(platform, env)

    def create_client(self, platform: str) -> PlatformClient:
        """A fresh client (own HTTP session and call counter) for one worker."""
        return create_client(platform, self.settings_env())
