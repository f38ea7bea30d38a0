"""kpi_tables: content_performance_daily and account_kpis_daily

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01

Two derived tables written by the KPI assets (see `tables.content_performance_daily` and
`tables.account_kpis_daily`). Frozen once released: never edit it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from analytics_pipeline.warehouse.tables import UTCDateTime

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "content_performance_daily",
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("external_content_id", sa.String(255), nullable=False),
        sa.Column("metric_date", sa.Date, nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("engagements", sa.BigInteger, nullable=True),
        sa.Column("engagement_inputs_known", sa.Integer, nullable=False),
        sa.Column("engagement_inputs_expected", sa.Integer, nullable=False),
        sa.Column("reach", sa.BigInteger, nullable=True),
        sa.Column("impressions", sa.BigInteger, nullable=True),
        sa.Column("views", sa.BigInteger, nullable=True),
        sa.Column("engagement_rate_on_reach", sa.Double, nullable=True),
        sa.Column("engagement_rate_on_impressions", sa.Double, nullable=True),
        sa.Column("counter_decreased", sa.Boolean, nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "organization_id",
            "integration_id",
            "external_content_id",
            "metric_date",
            name=op.f("uq_content_performance_daily_key"),
        ),
    )
    op.create_index(
        op.f("ix_content_performance_daily_date"), "content_performance_daily", ["metric_date"]
    )
    op.create_table(
        "account_kpis_daily",
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("metric_date", sa.Date, nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("followers_total", sa.BigInteger, nullable=True),
        sa.Column("follower_growth", sa.BigInteger, nullable=True),
        sa.Column("new_followers", sa.BigInteger, nullable=True),
        sa.Column("items_published", sa.Integer, nullable=False),
        sa.Column("items_measured", sa.Integer, nullable=False),
        sa.Column("items_with_engagements", sa.Integer, nullable=False),
        sa.Column("engagements", sa.BigInteger, nullable=True),
        sa.Column("reach", sa.BigInteger, nullable=True),
        sa.Column("impressions", sa.BigInteger, nullable=True),
        sa.Column("engagement_rate", sa.Double, nullable=True),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "organization_id",
            "integration_id",
            "metric_date",
            name=op.f("uq_account_kpis_daily_key"),
        ),
    )
    op.create_index(op.f("ix_account_kpis_daily_date"), "account_kpis_daily", ["metric_date"])


def downgrade() -> None:
    raise NotImplementedError("The warehouse migrations are forward-only")
