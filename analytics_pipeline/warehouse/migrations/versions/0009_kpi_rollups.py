"""kpi_rollups: weekly and monthly rollups per integration, organization and platform

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

One derived table written by the rollup assets (see `tables.kpi_rollups`). Frozen once released:
never edit it (its columns are written out here, not read from tables.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from analytics_pipeline.warehouse.tables import UTCDateTime

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _stat_columns() -> list[sa.Column]:
    columns: list[sa.Column] = []
    for name in ("engagements", "reach", "impressions"):
        columns += [
            sa.Column(f"days_with_{name}", sa.Integer, nullable=False),
            sa.Column(f"{name}_total", sa.BigInteger, nullable=True),
            sa.Column(f"{name}_avg", sa.Double, nullable=True),
            sa.Column(f"{name}_min", sa.BigInteger, nullable=True),
            sa.Column(f"{name}_max", sa.BigInteger, nullable=True),
        ]
    return columns


def upgrade() -> None:
    op.create_table(
        "kpi_rollups",
        sa.Column("period_grain", sa.String(8), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("scope_key", sa.String(64), nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("platform", sa.String(16), nullable=True),
        sa.Column("integrations", sa.Integer, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("items_published", sa.Integer, nullable=False),
        sa.Column("new_followers_total", sa.BigInteger, nullable=True),
        *_stat_columns(),
        sa.Column("engagement_rate", sa.Double, nullable=True),
        sa.Column("followers_start", sa.BigInteger, nullable=True),
        sa.Column("followers_end", sa.BigInteger, nullable=True),
        sa.Column("followers_end_date", sa.Date, nullable=True),
        sa.Column("follower_growth", sa.BigInteger, nullable=True),
        sa.Column("integrations_with_follower_growth", sa.Integer, nullable=False),
        sa.Column("top_content_integration_id", sa.String(64), nullable=True),
        sa.Column("top_content", sa.String(255), nullable=True),
        sa.Column("top_content_engagements", sa.BigInteger, nullable=True),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "period_grain IN ('week', 'month')", name=op.f("ck_kpi_rollups_period_grain")
        ),
        sa.CheckConstraint(
            "scope IN ('integration', 'organization', 'platform')",
            name=op.f("ck_kpi_rollups_scope"),
        ),
        sa.UniqueConstraint(
            "period_grain",
            "period_start",
            "organization_id",
            "scope",
            "scope_key",
            name=op.f("uq_kpi_rollups_key"),
        ),
    )


def downgrade() -> None:
    raise NotImplementedError("The warehouse migrations are forward-only")
