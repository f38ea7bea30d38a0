"""initial: the integrations registry, content items, daily content metrics, the ingestion ledger

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Released before Alembic as the step ``0001_initial``: a warehouse whose `schema_migrations`
records that step is stamped at this revision instead of running it. Frozen: never edit it (the
tables are written out here, not taken from tables.py, which describes the current shape).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from analytics_pipeline.warehouse.tables import UTCDateTime, in_check, json_type

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLATFORMS = ("facebook", "instagram", "linkedin", "x")
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
ERROR_CLASSES = ("transient", "permanent_credential", "permanent_object", "invalid_response")


def upgrade() -> None:
    op.create_table(
        "tracked_integrations",
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("external_account_id", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("credential_env", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("integration_id", name=op.f("pk_tracked_integrations")),
        sa.CheckConstraint(
            in_check("platform", PLATFORMS), name=op.f("ck_tracked_integrations_platform")
        ),
        sa.CheckConstraint(
            in_check("status", ("active", "paused", "needs_reauth")),
            name=op.f("ck_tracked_integrations_status"),
        ),
    )
    op.create_table(
        "content_items",
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
        sa.UniqueConstraint(
            "organization_id",
            "integration_id",
            "external_content_id",
            name=op.f("uq_content_items_key"),
        ),
        sa.CheckConstraint(in_check("platform", PLATFORMS), name=op.f("ck_content_items_platform")),
        sa.CheckConstraint(
            in_check("format", ("POST", "REEL", "VIDEO", "CAROUSEL", "STORY", "LINK", "TEXT")),
            name=op.f("ck_content_items_format"),
        ),
    )
    op.create_index(
        op.f("ix_content_items_integration_published"),
        "content_items",
        ["integration_id", "published_at"],
    )
    op.create_table(
        "content_metrics_daily",
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("external_content_id", sa.String(255), nullable=False),
        sa.Column("metric_date", sa.Date, nullable=False),
        sa.Column("value_kind", sa.String(32), nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=True) for name in METRIC_FIELDS),
        sa.Column("observed_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "organization_id",
            "integration_id",
            "external_content_id",
            "metric_date",
            name=op.f("uq_content_metrics_daily_key"),
        ),
        sa.CheckConstraint(
            in_check("value_kind", ("lifetime_snapshot", "daily")),
            name=op.f("ck_content_metrics_daily_value_kind"),
        ),
    )
    op.create_table(
        "ingestion_failures",
        # BIGSERIAL on PostgreSQL; on SQLite exactly INTEGER, so that `id` is the rowid.
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
            in_check("error_class", ERROR_CLASSES), name=op.f("ck_ingestion_failures_error_class")
        ),
    )
    op.create_index(
        op.f("ix_ingestion_failures_partition"),
        "ingestion_failures",
        ["integration_id", "asset", "partition_key"],
    )
    op.create_table(
        "partition_loads",
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("asset", sa.String(255), nullable=False),
        sa.Column("partition_date", sa.Date, nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("rows_written", sa.Integer, nullable=False),
        sa.Column("details", json_type(), nullable=False),
        sa.UniqueConstraint(
            "integration_id", "asset", "partition_date", name=op.f("uq_partition_loads_key")
        ),
    )


def downgrade() -> None:
    raise NotImplementedError("The warehouse migrations are forward-only")
