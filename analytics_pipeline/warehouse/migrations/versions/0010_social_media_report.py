"""social_media_report: one row per content item with its latest totals

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01

The dashboard table written by the `social_media_report` asset (see
`tables.social_media_report`). Frozen once released: never edit it. Its columns and constants
are spelled out here, not imported, so that later changes to tables.py cannot change what this
revision builds.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from analytics_pipeline.warehouse.tables import UTCDateTime, in_check, json_type

revision: str = "0010"
down_revision = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOTALS = (
    "impressions",
    "reach",
    "views",
    "reactions",
    "likes",
    "comments",
    "shares",
    "clicks",
    "saves",
)
TOTALS_BASES = ("latest_snapshot", "sum_of_daily")


def upgrade() -> None:
    op.create_table(
        "social_media_report",
        sa.Column("organization_id", sa.String(64), nullable=False),
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("external_content_id", sa.String(255), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("account_name", sa.String(255), nullable=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("caption_excerpt", sa.String(200), nullable=True),
        sa.Column("hashtags", json_type(), nullable=False),
        sa.Column("permalink", sa.Text, nullable=True),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("as_of_date", sa.Date, nullable=False),
        sa.Column("totals_basis", sa.String(16), nullable=False),
        sa.Column("days_summed", sa.Integer, nullable=True),
        *(sa.Column(name, sa.BigInteger, nullable=True) for name in TOTALS),
        sa.Column("engagements", sa.BigInteger, nullable=True),
        sa.Column("engagement_inputs_known", sa.Integer, nullable=False),
        sa.Column("engagement_inputs_expected", sa.Integer, nullable=False),
        sa.Column("engagement_rate_on_reach", sa.Double, nullable=True),
        sa.Column("engagement_rate_on_impressions", sa.Double, nullable=True),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint(
            "organization_id",
            "integration_id",
            "external_content_id",
            name=op.f("uq_social_media_report_key"),
        ),
        sa.CheckConstraint(
            in_check("totals_basis", TOTALS_BASES),
            name=op.f("ck_social_media_report_totals_basis"),
        ),
    )
    op.create_index(op.f("ix_social_media_report_as_of"), "social_media_report", ["as_of_date"])


def downgrade() -> None:
    raise NotImplementedError("The warehouse migrations are forward-only")
