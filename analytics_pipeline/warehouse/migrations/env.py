"""The Alembic environment: runs revisions on the connection that `migrate()` hands over.

There is no alembic.ini: `migrations.alembic_config()` builds the configuration, and the caller
puts an open connection, inside a transaction it owns (holding the migration lock), in
``config.attributes["connection"]``. Nothing here connects, begins or commits, so the revisions
and the `alembic_version` update commit or roll back together with the caller's transaction.
"""

from __future__ import annotations

from alembic import context

from analytics_pipeline.warehouse import tables
from analytics_pipeline.warehouse.migrations import COMPARE_OPTIONS

if context.is_offline_mode():
    raise RuntimeError("Offline (--sql) migrations are not supported: migrate a live database")

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=tables.metadata,
    # Autogenerate writes `op.batch_alter_table` blocks: SQLite cannot ALTER a constraint or a
    # column type, batch mode rebuilds the table there (and runs plain ALTERs on PostgreSQL).
    render_as_batch=True,
    on_version_apply=config.attributes.get("on_version_apply", []),
    **COMPARE_OPTIONS,
)
with context.begin_transaction():
    context.run_migrations()
