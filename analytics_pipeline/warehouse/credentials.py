"""The encrypted credential store: one row per integration, ciphertext only.

The warehouse never encrypts nor decrypts: `analytics_pipeline.credentials` hands it a Fernet
token and reads one back, so no plain-text secret ever reaches SQL, its parameters or its logs.

`lock_credential` is the row lock a token refresh takes before it spends a refresh token (X's
are single-use): `SELECT ... FOR UPDATE` on PostgreSQL; on SQLite every transaction of the
warehouse engine starts with BEGIN IMMEDIATE (see engine.py), which already holds the database's
write lock, so a plain SELECT inside it is just as exclusive. Either way, call it inside
``engine.begin()`` and re-read the row it returns: another process may have refreshed first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from analytics_pipeline.warehouse._sql import dialect_insert, require_aware
from analytics_pipeline.warehouse.tables import integration_credentials

_table = integration_credentials


@dataclass(frozen=True)
class StoredCredential:
    """A row of the store. `ciphertext` is opaque here (a Fernet token)."""

    integration_id: str
    ciphertext: str
    access_expires_at: dt.datetime | None
    refresh_expires_at: dt.datetime | None
    refreshed_at: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime

    def __repr__(self) -> str:  # the ciphertext is harmless without the key, but noisy
        return (
            f"StoredCredential({self.integration_id!r}, version={self.version}, "
            f"access_expires_at={self.access_expires_at})"
        )


_COLUMNS = (
    _table.c.integration_id,
    _table.c.secret_ciphertext,
    _table.c.access_expires_at,
    _table.c.refresh_expires_at,
    _table.c.refreshed_at,
    _table.c.version,
    _table.c.created_at,
    _table.c.updated_at,
)


def _from_row(row: Any) -> StoredCredential:
    values = row._mapping
    return StoredCredential(
        integration_id=values["integration_id"],
        ciphertext=values["secret_ciphertext"],
        access_expires_at=values["access_expires_at"],
        refresh_expires_at=values["refresh_expires_at"],
        refreshed_at=values["refreshed_at"],
        version=values["version"],
        created_at=values["created_at"],
        updated_at=values["updated_at"],
    )


def get_credential(conn: sa.Connection, integration_id: str) -> StoredCredential | None:
    """The stored credential of `integration_id`, without locking it."""
    row = conn.execute(sa.select(*_COLUMNS).where(_table.c.integration_id == integration_id))
    found = row.first()
    return None if found is None else _from_row(found)


def lock_credential(conn: sa.Connection, integration_id: str) -> StoredCredential | None:
    """The stored credential, locked until `conn`'s transaction ends (see the module doc)."""
    query = sa.select(*_COLUMNS).where(_table.c.integration_id == integration_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    found = conn.execute(query).first()
    return None if found is None else _from_row(found)


def put_credential(
    conn: sa.Connection,
    integration_id: str,
    *,
    ciphertext: str,
    access_expires_at: dt.datetime | None,
    refresh_expires_at: dt.datetime | None,
    now: dt.datetime,
    refreshed: bool = False,
) -> StoredCredential:
    """Insert or replace the credential of `integration_id` (version + 1 on replace).

    `refreshed`: the new value comes from a token refresh (sets `refreshed_at`)."""
    now = require_aware("now", now)
    values: dict[str, Any] = {
        "secret_ciphertext": ciphertext,
        "access_expires_at": _aware_or_none("access_expires_at", access_expires_at),
        "refresh_expires_at": _aware_or_none("refresh_expires_at", refresh_expires_at),
        "updated_at": now,
    }
    if refreshed:
        values["refreshed_at"] = now
    insert = dialect_insert(conn, _table).values(
        integration_id=integration_id, version=1, created_at=now, **values
    )
    statement = insert.on_conflict_do_update(
        index_elements=[_table.c.integration_id],
        set_={**values, "version": _table.c.version + 1},
    )
    conn.execute(statement)
    stored = get_credential(conn, integration_id)
    assert stored is not None
    return stored


def replace_ciphertext(conn: sa.Connection, integration_id: str, ciphertext: str) -> None:
    """Swap the ciphertext only (key rotation: same secret, new encryption)."""
    conn.execute(
        sa.update(_table)
        .where(_table.c.integration_id == integration_id)
        .values(secret_ciphertext=ciphertext)
    )


def lock_all_credentials(conn: sa.Connection) -> list[StoredCredential]:
    """Every stored credential, locked (for key rotation), by integration id."""
    query = sa.select(*_COLUMNS).order_by(_table.c.integration_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return [_from_row(row) for row in conn.execute(query)]


def delete_credential(conn: sa.Connection, integration_id: str) -> bool:
    """Forget the stored credential of `integration_id`; False if there was none."""
    result = conn.execute(sa.delete(_table).where(_table.c.integration_id == integration_id))
    return bool(result.rowcount)


def _aware_or_none(name: str, value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else require_aware(name, value)
