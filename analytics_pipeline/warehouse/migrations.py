"""Versioned schema migrations: an ordered list of (version, step) applied once each.

Rules for changing the schema:
- NEVER edit a step that has been released: databases out there already ran it, and a fresh
  database must replay exactly the same history. Append a new step instead (e.g.
  ``("0002_add_x", _v0002_add_x)``) and update `tables.py` to match the result.
- A step receives the open connection of the transaction that also records its version in
  `schema_migrations`, so a step and its record commit or roll back together. Steps must be
  plain DDL/DML that works on both SQLite and PostgreSQL (SQLite cannot ALTER/DROP constraints:
  rebuild the table there).
- Step 0001 defines its tables here, frozen, rather than reusing `tables.py`: `tables.py` is
  the current shape and will move on; step 0001 must keep creating the original one.

Concurrency: on PostgreSQL each step's transaction first takes a transaction-scoped advisory
lock, so two processes migrating at once apply every step exactly once (the second waits, then
finds the step recorded). On SQLite the transaction starts with BEGIN IMMEDIATE (see engine.py),
which serializes writers the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import sqlalchemy as sa

from analytics_pipeline.warehouse.tables import NAMING_CONVENTION, UTCDateTime, in_check, json_type

logger = logging.getLogger(__name__)

# "analytic" in ASCII: any constant works, it only has to be the same for every process.
_PG_ADVISORY_LOCK_KEY = 0x616E616C79746963

MigrationStep = Callable[[sa.Connection], None]


def _schema_migrations_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "schema_migrations",
        metadata,
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
    )


_bookkeeping_metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
_schema_migrations = _schema_migrations_table(_bookkeeping_metadata)


def _v0001_initial(conn: sa.Connection) -> None:
    """The first schema. Frozen: do not edit (see the module docstring)."""
    md = sa.MetaData(naming_convention=NAMING_CONVENTION)
    platforms = ("facebook", "instagram", "linkedin", "x")
    metric_fields = (
        "impressions",
        "reach",
        "views",
        "reactions",
        "likes",
        "comments",
        "shares",
        "clicks",
        "saves",
        "video_views",
    )
    sa.Table(
        "tracked_integrations",
        md,
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(64), primary_key=True),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("external_account_id", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("credential_env", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(in_check("platform", platforms), name="platform"),
        sa.CheckConstraint(in_check("status", ("active", "paused", "needs_reauth")), name="status"),
    )
    sa.Table(
        "content_items",
        md,
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("external_content_id", sa.String(255), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("caption", sa.Text, nullable=True),
        sa.Column("hashtags", json_type(), nullable=False),
        sa.Column("permalink", sa.Text, nullable=True),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("organization_id", "integration_id", "external_content_id", name="key"),
        sa.CheckConstraint(in_check("platform", platforms), name="platform"),
        sa.CheckConstraint(
            in_check("format", ("POST", "REEL", "VIDEO", "CAROUSEL", "STORY", "LINK", "TEXT")),
            name="format",
        ),
        sa.Index("integration_published", "integration_id", "published_at"),
    )
    sa.Table(
        "content_metrics_daily",
        md,
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("external_content_id", sa.String(255), nullable=False),
        sa.Column("metric_date", sa.Date, nullable=False),
        sa.Column("value_kind", sa.String(32), nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=True) for name in metric_fields),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "organization_id", "integration_id", "external_content_id", "metric_date", name="key"
        ),
        sa.CheckConstraint(
            in_check("value_kind", ("lifetime_snapshot", "daily")), name="value_kind"
        ),
    )
    sa.Table(
        "ingestion_failures",
        md,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(255), nullable=False),
        sa.Column("partition_key", sa.String(255), nullable=False),
        sa.Column("error_class", sa.String(32), nullable=False),
        sa.Column("platform_code", sa.String(64), nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            in_check(
                "error_class",
                ("transient", "permanent_credential", "permanent_object", "invalid_response"),
            ),
            name="error_class",
        ),
        sa.Index("partition", "integration_id", "asset", "partition_key"),
    )
    sa.Table(
        "partition_loads",
        md,
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(255), nullable=False),
        sa.Column("partition_date", sa.Date, nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("rows_written", sa.Integer, nullable=False),
        sa.Column("details", json_type(), nullable=False),
        sa.UniqueConstraint("integration_id", "asset", "partition_date", name="key"),
    )
    md.create_all(conn, checkfirst=False)


# Append only. Versions sort in application order; never reorder, rename or edit a released step.
STEPS: tuple[tuple[str, MigrationStep], ...] = (("0001_initial", _v0001_initial),)


def _lock(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_ADVISORY_LOCK_KEY)))


def _applied_versions(conn: sa.Connection) -> set[str]:
    _schema_migrations.create(conn, checkfirst=True)
    return set(conn.scalars(sa.select(_schema_migrations.c.version)))


def _apply_next(engine: sa.Engine) -> str | None:
    """Apply the first pending step in its own transaction; None when nothing is pending."""
    with engine.begin() as conn:
        _lock(conn)
        applied = _applied_versions(conn)
        pending = [(version, step) for version, step in STEPS if version not in applied]
        if not pending:
            return None
        version, step = pending[0]
        logger.info("Applying warehouse migration %s", version)
        step(conn)
        conn.execute(
            sa.insert(_schema_migrations).values(
                version=version, applied_at=dt.datetime.now(dt.UTC)
            )
        )
        return version


def migrate(engine: sa.Engine) -> list[str]:
    """Bring the warehouse schema up to date; returns the versions applied by this call.

    Idempotent ([] when already up to date) and safe to run from several processes at once.
    Versions recorded in the database but unknown to this code (a newer release migrated it)
    are left alone.
    """
    applied_now: list[str] = []
    while (version := _apply_next(engine)) is not None:
        applied_now.append(version)
    return applied_now


def known_versions() -> list[str]:
    """Every version this code knows, in application order."""
    return [version for version, _ in STEPS]


def pending_migrations(engine: sa.Engine) -> list[str]:
    """Versions this code knows that the database has not applied yet (read-only check)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(_schema_migrations.name):
            return known_versions()
        applied = set(conn.scalars(sa.select(_schema_migrations.c.version)))
    return [version for version in known_versions() if version not in applied]
