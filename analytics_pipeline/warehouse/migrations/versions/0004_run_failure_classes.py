"""run_failure_classes: 'stopped' and 'rejected_metric' failure rows

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

`ingestion_failures.error_class` also allows:
- 'stopped': a partition a stopped run (SIGTERM, Ctrl-C, the UI's Terminate) did not get to;
- 'rejected_metric': a metric the platform rejected or deprecated, one row per integration x
  metric x run (the partition landed without it; `platform_code` names the metric).
The named CHECK is dropped and re-added (PostgreSQL: two ALTERs; SQLite: batch mode rebuilds the
table from `_failures_as_of_0003()` with its rows, ids and index).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from analytics_pipeline.warehouse.tables import UTCDateTime, in_check

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ERROR_CLASSES_0003 = (
    "transient",
    "permanent_credential",
    "permanent_object",
    "permanent_config",
    "invalid_response",
)
ERROR_CLASSES = (*ERROR_CLASSES_0003, "stopped", "rejected_metric")


def upgrade() -> None:
    # No foreign key or view refers to this table, so SQLite's rebuild needs no PRAGMA dance.
    with op.batch_alter_table("ingestion_failures", copy_from=_failures_as_of_0003()) as batch:
        batch.drop_constraint(op.f("ck_ingestion_failures_error_class"), type_="check")
        batch.create_check_constraint(
            op.f("ck_ingestion_failures_error_class"), in_check("error_class", ERROR_CLASSES)
        )


def downgrade() -> None:
    raise NotImplementedError("The warehouse migrations are forward-only")


def _failures_as_of_0003() -> sa.Table:
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
            in_check("error_class", ERROR_CLASSES_0003),
            name=op.f("ck_ingestion_failures_error_class"),
        ),
        sa.Index(
            op.f("ix_ingestion_failures_partition"), "integration_id", "asset", "partition_key"
        ),
    )
