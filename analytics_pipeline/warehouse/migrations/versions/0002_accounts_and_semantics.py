"""accounts_and_semantics: permanent_config, reference_type, account metrics, the change view

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24

Released before Alembic as the step ``0002_accounts_and_semantics``: a warehouse whose
`schema_migrations` records that step is stamped at this revision instead of running it. Frozen:
never edit it.

- `ingestion_failures.error_class` also allows 'permanent_config': the named CHECK is dropped and
  re-added (PostgreSQL: two ALTERs; SQLite, which cannot alter a constraint: batch mode rebuilds
  the table from `_failures_as_of_0001()` with its rows, ids and index).
- `content_items.reference_type` ('quote' | 'reply' | 'reshare' | NULL): existing rows get NULL.
- the `account_metrics_daily` table.
- the `content_metrics_daily_change` view: what each content item got on each day (see
  `_change_view_select` and `tables.content_metrics_daily_change`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import CreateView

from analytics_pipeline.warehouse.tables import UTCDateTime, in_check

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ERROR_CLASSES_0001 = ("transient", "permanent_credential", "permanent_object", "invalid_response")
ERROR_CLASSES = (
    "transient",
    "permanent_credential",
    "permanent_object",
    "permanent_config",
    "invalid_response",
)
REFERENCE_TYPES = ("quote", "reply", "reshare")
METRIC_FIELDS = (
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
ACCOUNT_METRIC_FIELDS = (
    "followers_total",
    "new_followers",
    "profile_views",
    "reach",
    "impressions",
    "views",
    "website_clicks",
)


def upgrade() -> None:
    _widen_error_class()
    _add_reference_type()
    op.create_table(
        "account_metrics_daily",
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("metric_date", sa.Date, nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=True) for name in ACCOUNT_METRIC_FIELDS),
        sa.Column("followers_observed_at", UTCDateTime(), nullable=True),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "organization_id",
            "integration_id",
            "metric_date",
            name=op.f("uq_account_metrics_daily_key"),
        ),
    )
    # CreateView renders the constants of the SELECT inline: the DDL has no bound parameters.
    view = _change_view_select(op.get_context().dialect.name)
    op.execute(CreateView(view, "content_metrics_daily_change"))


def downgrade() -> None:
    raise NotImplementedError("The warehouse migrations are forward-only")


def _failures_as_of_0001() -> sa.Table:
    """`ingestion_failures` as 0001 created it. Batch mode rebuilds the SQLite table from this
    frozen definition rather than from a reflection of the live table, so the result depends on
    this file alone (PostgreSQL never rebuilds: it runs the two ALTERs)."""
    return sa.Table(
        "ingestion_failures",
        sa.MetaData(),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
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
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingestion_failures")),
        sa.CheckConstraint(
            in_check("error_class", ERROR_CLASSES_0001),
            name=op.f("ck_ingestion_failures_error_class"),
        ),
        sa.Index(
            op.f("ix_ingestion_failures_partition"), "integration_id", "asset", "partition_key"
        ),
    )


def _widen_error_class() -> None:
    """Let `ingestion_failures.error_class` be 'permanent_config' too; rows and ids are kept."""
    # No foreign key or view refers to this table, so SQLite's rebuild needs no PRAGMA dance.
    with op.batch_alter_table("ingestion_failures", copy_from=_failures_as_of_0001()) as batch:
        batch.drop_constraint(op.f("ck_ingestion_failures_error_class"), type_="check")
        batch.create_check_constraint(
            op.f("ck_ingestion_failures_error_class"), in_check("error_class", ERROR_CLASSES)
        )


def _add_reference_type() -> None:
    """`content_items.reference_type`: nullable, CHECKed; existing rows get NULL (original)."""
    # Not `op.add_column`: it adds a CHECK with a separate ALTER TABLE ... ADD CONSTRAINT, which
    # SQLite lacks (batch mode would copy every content item to a new table). SQLite and
    # PostgreSQL both take a named column CHECK in ADD COLUMN. Constants only, no input.
    column_type = sa.String(16).compile(dialect=op.get_context().dialect)
    check = in_check("reference_type", REFERENCE_TYPES)
    op.execute(
        f"ALTER TABLE content_items ADD COLUMN reference_type {column_type} "
        f"CONSTRAINT ck_content_items_reference_type CHECK ({check})"
    )


def _day_before(day: sa.ColumnElement[dt.date], dialect_name: str) -> sa.ColumnElement[Any]:
    """SQL for the date one day before `day`: SQLite stores dates as ISO 'YYYY-MM-DD' text."""
    if dialect_name == "sqlite":
        return sa.func.date(day, "-1 day")
    return day - 1  # PostgreSQL: date - integer is a date


def _change_view_select(dialect_name: str) -> sa.Select[Any]:
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
        *(sa.column(name, sa.BigInteger) for name in METRIC_FIELDS),
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
        for name in METRIC_FIELDS
    ]
    decreased = sa.or_(*(cur.c[name] < prev.c[name] for name in METRIC_FIELDS))
    previous_snapshot = sa.and_(
        prev.c.organization_id == cur.c.organization_id,
        prev.c.integration_id == cur.c.integration_id,
        prev.c.external_content_id == cur.c.external_content_id,
        prev.c.metric_date == _day_before(cur.c.metric_date, dialect_name),
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
