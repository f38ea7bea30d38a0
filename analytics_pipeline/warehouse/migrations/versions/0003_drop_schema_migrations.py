"""drop_schema_migrations: the pre-Alembic bookkeeping table

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Warehouses created before Alembic recorded their steps in `schema_migrations`; `migrate()` reads
it once to stamp the matching revision, after which `alembic_version` alone is the record. A
warehouse created by Alembic never had the table, hence IF EXISTS.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("schema_migrations", if_exists=True)


def downgrade() -> None:
    raise NotImplementedError("The warehouse migrations are forward-only")
