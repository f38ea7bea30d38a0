"""platform_slots: the shared limiter of runs fetching from one platform

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01

One row per slot a run holds on a platform (see `tables.platform_slots` and
`warehouse/slots.py`); a free slot has no row. Frozen once released: never edit it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from analytics_pipeline.warehouse.tables import UTCDateTime

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "platform_slots",
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("slot", sa.Integer, nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("acquired_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("platform", "slot", name=op.f("pk_platform_slots")),
    )
    op.create_index(op.f("ix_platform_slots_holder"), "platform_slots", ["holder"])


def downgrade() -> None:
    raise NotImplementedError("The warehouse migrations are forward-only")
