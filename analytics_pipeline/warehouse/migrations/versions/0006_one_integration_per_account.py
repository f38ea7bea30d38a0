"""one_integration_per_account: UNIQUE (organization_id, platform, external_account_id)

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-01

An organization tracks one account of a platform once: a second integration for the same page
fetched everything twice and doubled every dashboard row. The constraint
`uq_tracked_integrations_account` makes the database refuse it, whatever the entry point.

A warehouse that already tracks an account twice is NOT changed: the upgrade refuses with a
`MigrationRefusedError` listing each duplicate group (integration ids, oldest first), and the
whole migration rolls back (`migrate()` runs in one transaction). Which of the two ids to keep is
the operator's choice (dashboards and partitions are keyed by it), so nothing is deleted here:
`analytics-pipeline integrations remove <id>` the extra ones, then run `init-db` again.

SQLite cannot add a constraint to an existing table: batch mode rebuilds `tracked_integrations`
from `_integrations_as_of_0001()` (a frozen definition, so the rebuild keeps its CHECKs), with
its rows. No foreign key or view refers to the table. PostgreSQL runs one ALTER TABLE.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from analytics_pipeline.warehouse.migrations import MigrationRefusedError
from analytics_pipeline.warehouse.tables import UTCDateTime, in_check

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PLATFORMS = ("facebook", "instagram", "linkedin", "x")
STATUSES = ("active", "paused", "needs_reauth")
_KEY = ("organization_id", "platform", "external_account_id")


def upgrade() -> None:
    _refuse_duplicates()
    with op.batch_alter_table(
        "tracked_integrations", copy_from=_integrations_as_of_0001()
    ) as batch:
        batch.create_unique_constraint(op.f("uq_tracked_integrations_account"), list(_KEY))


def downgrade() -> None:
    raise NotImplementedError("The warehouse migrations are forward-only")


def _refuse_duplicates() -> None:
    table = sa.table(
        "tracked_integrations",
        *(sa.column(name, sa.String) for name in (*_KEY, "integration_id", "created_at")),
    )
    key = [table.c[name] for name in _KEY]
    duplicated = sa.select(*key).group_by(*key).having(sa.func.count() > 1).subquery()
    rows = (
        op.get_bind()
        .execute(
            sa.select(*key, table.c.integration_id)
            .join(duplicated, sa.and_(*(table.c[n] == duplicated.c[n] for n in _KEY)))
            .order_by(*key, table.c.created_at, table.c.integration_id)
        )
        .all()
    )
    if not rows:
        return
    groups: dict[tuple[str, str, str], list[str]] = {}
    for row in rows:
        organization, platform, account, integration = (str(value) for value in row)
        groups.setdefault((organization, platform, account), []).append(integration)
    listed = "; ".join(
        f"{org}/{platform} {account}: {', '.join(ids)}"
        for (org, platform, account), ids in groups.items()
    )
    raise MigrationRefusedError(
        f"Revision 0006 makes one account per organization and platform unique, but the "
        f"warehouse tracks {len(groups)} account(s) more than once ({listed}; oldest first). "
        "Nothing was changed: remove the extra integrations with `analytics-pipeline "
        "integrations remove <id>`, then run `analytics-pipeline init-db` again."
    )


def _integrations_as_of_0001() -> sa.Table:
    """`tracked_integrations` as 0001 created it (0002 and 0003 did not change it)."""
    return sa.Table(
        "tracked_integrations",
        sa.MetaData(),
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
        sa.PrimaryKeyConstraint("integration_id", name="pk_tracked_integrations"),
        sa.CheckConstraint(
            in_check("platform", PLATFORMS), name="ck_tracked_integrations_platform"
        ),
        sa.CheckConstraint(in_check("status", STATUSES), name="ck_tracked_integrations_status"),
    )
