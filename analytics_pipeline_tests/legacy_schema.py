"""The pre-Alembic migration framework, frozen, to build warehouses as released code left them.

Tests of adopting such a warehouse (test_warehouse_migrations.py) need a database exactly as the
old `analytics_pipeline/warehouse/migrations.py` (last in commit eee66ba) built it: its tables,
constraints, indexes and view, and its bookkeeping table `schema_migrations` with one row per
applied step. The steps below are copied from it unchanged; of the framework only what records
the steps is kept (one transaction per step, as it did; no lock, the tests run one at a time).
Never edit the steps: they stand for databases that exist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.schema import AddConstraint, CreateView, DropConstraint

from analytics_pipeline.warehouse.tables import NAMING_CONVENTION, UTCDateTime, in_check, json_type

MigrationStep = Callable[[sa.Connection], None]


def _schema_migrations_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "schema_migrations",
        metadata,
        sa.Column("version", sa.String(64), primary_key=True),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
    )


_bookkeeping_metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
schema_migrations = _schema_migrations_table(_bookkeeping_metadata)


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


# --- 0002_accounts_and_semantics (frozen once released) ---------------------------------------

_V0002_ERROR_CLASSES = (
    "transient",
    "permanent_credential",
    "permanent_object",
    "permanent_config",
    "invalid_response",
)
_V0002_REFERENCE_TYPES = ("quote", "reply", "reshare")
_V0002_METRIC_FIELDS = (
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
_V0002_ACCOUNT_METRIC_FIELDS = (
    "followers_total",
    "new_followers",
    "profile_views",
    "reach",
    "impressions",
    "views",
    "website_clicks",
)
_V0002_FAILURE_COLUMNS = (
    "id",
    "organization_id",
    "integration_id",
    "asset",
    "partition_key",
    "error_class",
    "platform_code",
    "message",
    "run_id",
    "occurred_at",
    "resolved_at",
)


def _v0002_ingestion_failures(md: sa.MetaData) -> sa.Table:
    """`ingestion_failures` as of 0002: 0001's table with the wider error_class CHECK."""
    return sa.Table(
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
        sa.CheckConstraint(in_check("error_class", _V0002_ERROR_CLASSES), name="error_class"),
        sa.Index("partition", "integration_id", "asset", "partition_key"),
    )


def _v0002_widen_error_class(conn: sa.Connection) -> None:
    """Let `ingestion_failures.error_class` be 'permanent_config' too; rows and ids are kept."""
    md = sa.MetaData(naming_convention=NAMING_CONVENTION)
    failures = _v0002_ingestion_failures(md)
    if conn.dialect.name == "postgresql":
        check = next(c for c in failures.constraints if isinstance(c, sa.CheckConstraint))
        conn.execute(DropConstraint(check))
        conn.execute(AddConstraint(check))
        return
    # SQLite cannot alter a constraint: move the table aside, create the new one (with its index,
    # whose name is global in SQLite, hence dropped first), copy every row with its id, drop the
    # old table. All in the step's transaction. No foreign key or view refers to this table.
    old_name = "_v0002_ingestion_failures_old"
    conn.exec_driver_sql("DROP INDEX ix_ingestion_failures_partition")
    conn.exec_driver_sql(f"ALTER TABLE ingestion_failures RENAME TO {old_name}")
    failures.create(conn)
    old = sa.table(old_name, *(sa.column(name) for name in _V0002_FAILURE_COLUMNS))
    conn.execute(
        sa.insert(failures).from_select(
            list(_V0002_FAILURE_COLUMNS), sa.select(*(old.c[n] for n in _V0002_FAILURE_COLUMNS))
        )
    )
    conn.exec_driver_sql(f"DROP TABLE {old_name}")


def _v0002_add_reference_type(conn: sa.Connection) -> None:
    """`content_items.reference_type`: nullable, CHECKed; existing rows get NULL (original)."""
    column_type = sa.String(16).compile(dialect=conn.dialect)
    check = in_check("reference_type", _V0002_REFERENCE_TYPES)
    # Constants only (no input): ADD COLUMN with a named column CHECK works on both dialects.
    conn.exec_driver_sql(
        f"ALTER TABLE content_items ADD COLUMN reference_type {column_type} "
        f"CONSTRAINT ck_content_items_reference_type CHECK ({check})"
    )


def _v0002_create_account_metrics(conn: sa.Connection) -> None:
    md = sa.MetaData(naming_convention=NAMING_CONVENTION)
    sa.Table(
        "account_metrics_daily",
        md,
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("metric_date", sa.Date, nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=True) for name in _V0002_ACCOUNT_METRIC_FIELDS),
        sa.Column("followers_observed_at", UTCDateTime(), nullable=True),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("organization_id", "integration_id", "metric_date", name="key"),
    )
    md.create_all(conn, checkfirst=False)


def _v0002_day_before(day: sa.ColumnElement[dt.date], dialect_name: str) -> sa.ColumnElement[Any]:
    """SQL for the date one day before `day`: SQLite stores dates as ISO 'YYYY-MM-DD' text."""
    if dialect_name == "sqlite":
        return sa.func.date(day, "-1 day")
    return day - 1  # PostgreSQL: date - integer is a date


def _v0002_change_view_select(dialect_name: str) -> sa.Select[Any]:
    """The body of the `content_metrics_daily_change` view: what each item got on each day.

    One row per content_metrics_daily row ("cur"), LEFT JOINed to the 'lifetime_snapshot' row
    of the same (organization, integration, item) on the day before ("prev"). For each metric,
    `<metric>_on_day` is cur's value for 'daily' rows, and cur - prev for 'lifetime_snapshot'
    rows: NULL when prev is missing or either value is NULL (SQL NULL arithmetic), never
    estimated. `change_source` names which of the two it is; `counter_decreased` is true when
    a difference is negative (a platform revised a counter down: kept as observed, flagged).
    Static SQL: only constants, compiled for the connection's dialect (see tables.py).
    """
    metrics = sa.table(
        "content_metrics_daily",
        sa.column("organization_id", sa.String),
        sa.column("integration_id", sa.String),
        sa.column("external_content_id", sa.String),
        sa.column("metric_date", sa.Date),
        sa.column("value_kind", sa.String),
        *(sa.column(name, sa.BigInteger) for name in _V0002_METRIC_FIELDS),
    )
    cur = metrics.alias("cur")
    prev = metrics.alias("prev")
    is_daily = cur.c.value_kind == "daily"
    is_snapshot = cur.c.value_kind == "lifetime_snapshot"
    on_day = [
        sa.case(
            (is_daily, cur.c[name]),
            (is_snapshot, cur.c[name] - prev.c[name]),
        ).label(f"{name}_on_day")
        for name in _V0002_METRIC_FIELDS
    ]
    decreased = sa.or_(*(cur.c[name] < prev.c[name] for name in _V0002_METRIC_FIELDS))
    previous_snapshot = sa.and_(
        prev.c.organization_id == cur.c.organization_id,
        prev.c.integration_id == cur.c.integration_id,
        prev.c.external_content_id == cur.c.external_content_id,
        prev.c.metric_date == _v0002_day_before(cur.c.metric_date, dialect_name),
        prev.c.value_kind == "lifetime_snapshot",
    )
    return sa.select(
        cur.c.organization_id,
        cur.c.integration_id,
        cur.c.external_content_id,
        cur.c.metric_date,
        cur.c.value_kind,
        *on_day,
        sa.case((is_daily, "platform_daily"), else_="snapshot_difference").label("change_source"),
        # A NULL comparison (missing day or value) is not a decrease: the CASE turns it to false.
        sa.case((sa.and_(is_snapshot, decreased), sa.true()), else_=sa.false()).label(
            "counter_decreased"
        ),
    ).select_from(cur.outerjoin(prev, previous_snapshot))


def _v0002_accounts_and_semantics(conn: sa.Connection) -> None:
    """Error class 'permanent_config', content reference_type, account metrics, change view."""
    _v0002_widen_error_class(conn)
    _v0002_add_reference_type(conn)
    _v0002_create_account_metrics(conn)
    # CreateView renders the constants of the SELECT inline: the DDL has no bound parameters.
    view = _v0002_change_view_select(conn.dialect.name)
    conn.execute(CreateView(view, "content_metrics_daily_change"))


# Append only. Versions sort in application order; never reorder, rename or edit a released step.
STEPS: tuple[tuple[str, MigrationStep], ...] = (
    ("0001_initial", _v0001_initial),
    ("0002_accounts_and_semantics", _v0002_accounts_and_semantics),
)


def build_legacy_warehouse(engine: sa.Engine, *, through: str) -> None:
    """Apply the legacy steps up to and including `through` to an empty database, each with its
    `schema_migrations` row in one transaction, as the old `migrate(engine, target=through)` did."""
    versions = [version for version, _ in STEPS]
    for version, step in STEPS[: versions.index(through) + 1]:
        with engine.begin() as conn:
            schema_migrations.create(conn, checkfirst=True)
            step(conn)
            conn.execute(
                sa.insert(schema_migrations).values(
                    version=version, applied_at=dt.datetime.now(dt.UTC)
                )
            )
