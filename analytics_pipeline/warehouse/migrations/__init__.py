"""Warehouse schema migrations: Alembic revisions in `versions/`, applied by `migrate()`.

Alembic is configured here in code (`alembic_config()`; there is no alembic.ini) and records the
applied revision in the `alembic_version` table. `analytics-pipeline init-db` runs `migrate()`;
the Dagster warehouse resource refuses to run while `pending_migrations()` is not empty.

Rules for changing the schema:
- NEVER edit a released revision: databases out there already ran it, and a fresh database must
  replay exactly the same history. Add a revision (one head only: `known_versions()` refuses a
  branched history) and update `tables.py` to match its result; a test compares the two with
  Alembic's autogenerate. To draft one against a database migrated to head::

      config = alembic_config(conn)
      alembic.command.revision(config, "what it does", rev_id="0004", autogenerate=True)

  then review it: autogenerate sees no CHECK constraint and no view.
- A revision defines the tables, columns, constraints and views it creates, frozen, rather than
  reusing `tables.py` (the current shape, which will move on). Names are written out in full
  (``op.f(...)``) so that they do not depend on the naming convention of `tables.metadata`.
- Revisions must work on SQLite and PostgreSQL. SQLite cannot ALTER a constraint: use
  ``op.batch_alter_table`` (it rebuilds the table on SQLite, with its rows, and runs plain
  ALTERs on PostgreSQL). A table that a view reads (content_metrics_daily, read by
  content_metrics_daily_change) cannot be dropped on PostgreSQL and leaves a broken view on
  SQLite: drop the view first and re-create it in the same revision.
- Forward-only: `downgrade()` raises; a mistake is fixed by a new revision.

Revisions so far: 0001 initial, 0002 accounts_and_semantics (see their docstrings), 0003 drops
`schema_migrations`, 0004 lets `ingestion_failures` record `stopped` and `rejected_metric`,
0006 one_integration_per_account (refuses, with `MigrationRefusedError`, a warehouse that
tracks an account twice), 0007 adds the encrypted credential store `integration_credentials`,
0008 the KPI tables `content_performance_daily` and `account_kpis_daily`, 0009 the weekly and
monthly rollups `kpi_rollups`, 0010 the report table `social_media_report`,
0011 `platform_slots`, the shared limiter of runs per platform (warehouse/slots.py).

Adopting a warehouse created before Alembic: such a database has no `alembic_version`, and its
`schema_migrations` table lists the steps it ran ('0001_initial', '0002_accounts_and_semantics'),
which built exactly what revisions 0001 and 0002 build. `migrate()` stamps the revision of the
last recorded step (no DDL runs, every row stays) and upgrades from there; 0003 then drops
`schema_migrations`.

Concurrency: `migrate()` runs in ONE transaction (adoption, every revision, the version
update), so a failure leaves the database as it was. On PostgreSQL the transaction first takes a
transaction-scoped advisory lock: a second process migrating at once waits, then finds the
revisions applied. On SQLite the transaction starts with BEGIN IMMEDIATE (see engine.py), which
serializes writers the same way.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory

logger = logging.getLogger(__name__)


class MigrationRefusedError(RuntimeError):
    """A revision found data it cannot migrate safely on its own; the message says what to do.
    The whole migration is rolled back."""


# "analytic" in ASCII: any constant works, it only has to be the same for every process.
_PG_ADVISORY_LOCK_KEY = 0x616E616C79746963

_VERSION_TABLE = "alembic_version"  # Alembic's default
_LEGACY_TABLE = "schema_migrations"
# Steps of the pre-Alembic framework -> the revision that builds the same schema, in order.
_LEGACY_STEPS = {"0001_initial": "0001", "0002_accounts_and_semantics": "0002"}

# How autogenerate compares a database with `tables.metadata` (env.py and the tests). No custom
# comparator is needed: Alembic compares types as rendered for the dialect, so `UTCDateTime` is
# its DateTime(timezone=True) impl (a PostgreSQL TIMESTAMP without time zone is reported) and
# the JSON variant is JSONB on PostgreSQL (plain JSON is reported); a test checks both. Server
# defaults are compared too (the only one, BIGSERIAL's nextval, is recognized as such). Nothing
# is filtered out: Alembic skips its own `alembic_version` and reflects tables only, not the
# view. It does not compare CHECK constraints or views: helpers.assert_schema_matches_tables.
COMPARE_OPTIONS: dict[str, Any] = {"compare_type": True, "compare_server_default": True}


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration for the warehouse revisions, optionally bound to `connection`.

    The connection must already be in a transaction: env.py neither begins nor commits one.
    """
    config = Config()
    # Config values go through ConfigParser interpolation: a '%' in the path must be doubled.
    config.set_main_option("script_location", str(Path(__file__).parent).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def known_versions() -> list[str]:
    """Every revision this code knows, in application order (oldest first)."""
    script = _script()
    script.get_current_head()  # raises if the history has branched: `migrate()` assumes a line
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _legacy_revision(conn: sa.Connection) -> str | None:
    """For a warehouse built by the pre-Alembic framework (and not yet adopted): the revision
    equal to the last step its `schema_migrations` records; else None."""
    inspector = sa.inspect(conn)
    if inspector.has_table(_VERSION_TABLE) or not inspector.has_table(_LEGACY_TABLE):
        return None
    legacy = sa.table(_LEGACY_TABLE, sa.column("version", sa.String))
    recorded = set(conn.scalars(sa.select(legacy.c.version)))
    unknown = recorded - _LEGACY_STEPS.keys()
    if unknown:
        raise RuntimeError(f"{_LEGACY_TABLE} lists steps this code does not know: {unknown}")
    applied = [revision for step, revision in _LEGACY_STEPS.items() if step in recorded]
    return applied[-1] if applied else None


def _current_revision(conn: sa.Connection) -> str | None:
    """The applied revision (None: an empty warehouse); a legacy warehouse counts as adopted."""
    return _legacy_revision(conn) or MigrationContext.configure(conn).get_current_revision()


def _lock(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_ADVISORY_LOCK_KEY)))


def migrate(engine: sa.Engine, *, target: str | None = None) -> list[str]:
    """Bring the warehouse schema up to date; returns the revisions applied by this call.

    Idempotent ([] when already up to date) and safe to run from several processes at once.
    A warehouse built before Alembic is adopted first (see the module docstring). A database at
    a revision unknown to this code (a newer release migrated it) is left alone. `target` stops
    at that revision (e.g. to build an old schema in a test); it never undoes a revision.
    """
    versions = known_versions()
    destination = versions[-1] if target is None else target
    if destination not in versions:
        raise ValueError(f"Unknown migration version {target!r}; known: {versions}")
    applied: list[str] = []

    def record(*, step: MigrationInfo, **_: Any) -> None:
        applied.extend(step.up_revision_ids)

    with engine.begin() as conn:
        _lock(conn)
        legacy = _legacy_revision(conn)
        if legacy is not None:
            logger.info("Adopting a pre-Alembic warehouse: stamping revision %s", legacy)
            MigrationContext.configure(conn).stamp(_script(), legacy)
        current = _current_revision(conn)
        if current is not None and current not in versions:
            logger.warning(
                "The warehouse is at revision %s, unknown to this code: left alone", current
            )
            return []
        if current is not None and versions.index(current) >= versions.index(destination):
            return []
        config = alembic_config(conn)
        config.attributes["on_version_apply"] = [record]
        logger.info("Migrating the warehouse from %s to %s", current or "empty", destination)
        command.upgrade(config, destination)
    return applied


def pending_migrations(engine: sa.Engine) -> list[str]:
    """Revisions this code knows that the database has not applied yet (read-only check)."""
    versions = known_versions()
    with engine.connect() as conn:
        current = _current_revision(conn)
    if current is None:
        return versions
    if current not in versions:
        return []  # a newer release migrated it: nothing this code knows is missing
    return versions[versions.index(current) + 1 :]
