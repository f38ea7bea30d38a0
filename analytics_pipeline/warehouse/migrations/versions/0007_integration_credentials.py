"""integration_credentials: the encrypted credential store

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

One row per integration whose credential lives in the warehouse (set with `analytics-pipeline
integrations set-credential`): `secret_ciphertext` is a Fernet token (see
`analytics_pipeline.credentials`); the database never sees a token in plain text. The expiry
columns are not secret: they let the pipeline refresh an access token ahead of time without
decrypting anything, and let operators see when a re-authorization is due.

No foreign key to tracked_integrations: a revision that rebuilds that table on SQLite (batch
mode drops and re-creates it) would cascade into this one.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from analytics_pipeline.warehouse.tables import UTCDateTime

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "integration_credentials",
        sa.Column("integration_id", sa.String(64), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("access_expires_at", UTCDateTime(), nullable=True),
        sa.Column("refresh_expires_at", UTCDateTime(), nullable=True),
        sa.Column("refreshed_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("integration_id", name=op.f("pk_integration_credentials")),
    )


def downgrade() -> None:
    raise NotImplementedError("The warehouse migrations are forward-only")
