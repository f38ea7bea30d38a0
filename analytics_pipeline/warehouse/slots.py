"""Platform slots: at most N runs fetch from one platform at once, however they were launched.

The run queue limits runs by their `analytics/platform` tag, but runs the UI or GraphQL create
(an asset backfill's implicit job) carry no such tag; the ingestion step therefore also takes a
slot here before fetching (defs/platform_slots.py). A slot is a row of `platform_slots` keyed
(platform, slot number below the limit) and held by a run id; a free slot has no row. The
holder refreshes `heartbeat_at` while it works; a slot whose heartbeat is older than
`stale_after` belongs to a run that died and is taken over by the next one.

Correct under concurrency without explicit locks: every claim is one statement whose outcome
is read back (INSERT ... ON CONFLICT DO NOTHING RETURNING, UPDATE ... WHERE stale RETURNING).
On PostgreSQL the primary key makes a concurrent insert of the same slot wait and then do
nothing, and READ COMMITTED re-checks an UPDATE's condition on the row a concurrent claim just
committed; on SQLite the transaction holds the single write lock (BEGIN IMMEDIATE, engine.py).

All functions take a connection the caller opened with ``engine.begin()`` and never commit;
keep that transaction short (one claim).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from analytics_pipeline.warehouse._sql import dialect_insert, require_aware
from analytics_pipeline.warehouse.tables import platform_slots as _table

DEFAULT_STALE_AFTER = dt.timedelta(seconds=120)


def acquire(
    conn: sa.Connection,
    platform: str,
    holder: str,
    slots: int,
    now: dt.datetime,
    stale_after: dt.timedelta = DEFAULT_STALE_AFTER,
) -> bool:
    """Claim one of the `slots` slots of `platform` for `holder`; False when all are held.

    A slot `holder` already holds (a retried step of the same run) is kept and refreshed; a
    free slot is claimed, else one whose heartbeat is older than `stale_after`."""
    if slots < 1:
        raise ValueError("slots must be at least 1")
    now = require_aware("now", now)
    own = sa.update(_table).where(_table.c.platform == platform, _table.c.holder == holder)
    if conn.execute(own.values(heartbeat_at=now).returning(_table.c.slot)).first() is not None:
        return True
    claim = {"holder": holder, "acquired_at": now, "heartbeat_at": now}
    for slot in range(slots):
        insert = dialect_insert(conn, _table).values(platform=platform, slot=slot, **claim)
        statement = insert.on_conflict_do_nothing().returning(_table.c.slot)
        if conn.execute(statement).first() is not None:
            return True
        take_over = (
            sa.update(_table)
            .where(
                _table.c.platform == platform,
                _table.c.slot == slot,
                _table.c.heartbeat_at < now - stale_after,
            )
            .values(**claim)
            .returning(_table.c.slot)
        )
        if conn.execute(take_over).first() is not None:
            return True
    return False


def heartbeat(conn: sa.Connection, platform: str, holder: str, now: dt.datetime) -> bool:
    """Keep `holder`'s slot on `platform` alive; False if it holds none (it was taken over)."""
    statement = (
        sa.update(_table)
        .where(_table.c.platform == platform, _table.c.holder == holder)
        .values(heartbeat_at=require_aware("now", now))
        .returning(_table.c.slot)
    )
    return conn.execute(statement).first() is not None


def release(conn: sa.Connection, holder: str, platform: str | None = None) -> int:
    """Free `holder`'s slots (on `platform`, or on every platform); returns how many."""
    statement = sa.delete(_table).where(_table.c.holder == holder)
    if platform is not None:
        statement = statement.where(_table.c.platform == platform)
    return conn.execute(statement).rowcount


def holders(
    conn: sa.Connection,
    platform: str,
    now: dt.datetime,
    stale_after: dt.timedelta = DEFAULT_STALE_AFTER,
) -> list[str]:
    """The runs holding a live slot of `platform` (heartbeat within `stale_after`), by slot."""
    cutoff = require_aware("now", now) - stale_after
    return list(
        conn.scalars(
            sa.select(_table.c.holder)
            .where(_table.c.platform == platform, _table.c.heartbeat_at >= cutoff)
            .order_by(_table.c.slot)
        )
    )
