"""Platform slots (warehouse/slots.py) on SQLite and PostgreSQL: at most N holders per platform,
a dead holder's slot is taken over, a run re-takes its own slot, and racing claims never let
more than N runs in."""

from __future__ import annotations

import datetime as dt
import threading

import sqlalchemy as sa

from analytics_pipeline.warehouse import slots, tables

T0 = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
STALE = dt.timedelta(seconds=120)


def _acquire(engine: sa.Engine, holder: str, now: dt.datetime = T0, platform="facebook") -> bool:
    with engine.begin() as conn:
        return slots.acquire(conn, platform, holder, 2, now, STALE)


def _holders(engine: sa.Engine, platform: str = "facebook", now: dt.datetime = T0) -> list[str]:
    with engine.connect() as conn:
        return slots.holders(conn, platform, now, STALE)


def test_up_to_n_holders_per_platform(engine):
    assert _acquire(engine, "run-a")
    assert _acquire(engine, "run-b")
    assert not _acquire(engine, "run-c")
    assert _holders(engine) == ["run-a", "run-b"]
    # Another platform has slots of its own.
    assert _acquire(engine, "run-c", platform="linkedin")
    assert _holders(engine, "linkedin") == ["run-c"]


def test_a_released_slot_is_free_again(engine):
    assert _acquire(engine, "run-a") and _acquire(engine, "run-b")
    with engine.begin() as conn:
        assert slots.release(conn, "run-a") == 1
        assert slots.release(conn, "run-a") == 0
    assert _acquire(engine, "run-c")
    assert sorted(_holders(engine)) == ["run-b", "run-c"]


def test_release_frees_every_platform_of_the_holder_or_only_one(engine):
    assert _acquire(engine, "run-a") and _acquire(engine, "run-a", platform="x")
    with engine.begin() as conn:
        assert slots.release(conn, "run-a", "x") == 1
    assert _holders(engine) == ["run-a"] and _holders(engine, "x") == []
    with engine.begin() as conn:
        assert slots.release(conn, "run-a") == 1
    assert _holders(engine) == []


def test_the_same_holder_re_takes_its_own_slot(engine):
    assert _acquire(engine, "run-a") and _acquire(engine, "run-b")
    later = T0 + dt.timedelta(seconds=30)
    assert _acquire(engine, "run-a", now=later)  # a retried step of run-a: no third slot
    with engine.connect() as conn:
        rows = conn.execute(sa.select(tables.platform_slots)).all()
    assert len(rows) == 2
    mine = next(row for row in rows if row.holder == "run-a")
    assert mine.acquired_at == T0 and mine.heartbeat_at == later


def test_a_stale_slot_is_taken_over_and_a_live_one_is_not(engine):
    assert _acquire(engine, "run-a") and _acquire(engine, "run-b")
    beat = T0 + dt.timedelta(seconds=100)
    with engine.begin() as conn:
        assert slots.heartbeat(conn, "facebook", "run-b", beat)
    # At T0+121 s run-a's heartbeat (T0) is stale, run-b's (T0+100 s) is not.
    later = T0 + STALE + dt.timedelta(seconds=1)
    assert _holders(engine, now=later) == ["run-b"]
    assert _acquire(engine, "run-c", now=later)
    assert not _acquire(engine, "run-d", now=later)
    assert sorted(_holders(engine, now=later)) == ["run-b", "run-c"]
    with engine.begin() as conn:  # run-a comes back: its slot is gone
        assert not slots.heartbeat(conn, "facebook", "run-a", later)


def test_racing_claims_never_admit_more_than_n(engine):
    """Threads with their own connections claim at once, many rounds, on a platform with two
    slots and a stale third holder: every round exactly two win and the table agrees."""
    rounds, contenders = 5, 6
    for round_number in range(rounds):
        platform = f"race-{round_number}"
        with engine.begin() as conn:  # a dead run's slot, to be taken over
            slots.acquire(conn, platform, "dead", 2, T0 - 2 * STALE, STALE)
        start = threading.Barrier(contenders)
        won: list[str] = []

        def claim(holder: str, platform: str = platform, start=start, won=won) -> None:
            start.wait()
            with engine.begin() as conn:
                if slots.acquire(conn, platform, holder, 2, T0, STALE):
                    won.append(holder)

        threads = [threading.Thread(target=claim, args=(f"run-{n}",)) for n in range(contenders)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 2, won
        assert sorted(_holders(engine, platform)) == sorted(won)
