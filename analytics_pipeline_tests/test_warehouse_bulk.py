"""The bulk upsert path (warehouse/bulk.py), on SQLite and PostgreSQL: exact counts across
batches, NULL handling, identical rows left alone, the caller's transaction, the array encodings
(integers as text literals, anything else through psycopg), the metrics' validation and the
snapshot columns (a NULL input keeps the stored value, a stamp follows real changes)."""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from analytics_pipeline.records import METRIC_FIELDS, ContentMetrics, ValueKind
from analytics_pipeline.warehouse import UpsertCounts, bulk, make_engine, upsert_content_metrics
from analytics_pipeline.warehouse import tables as t
from analytics_pipeline_tests.helpers import IID, ORG, T0

DAY = dt.date(2026, 3, 1)


def _metrics(values: Mapping[str, int | None]) -> list[ContentMetrics]:
    return [ContentMetrics(key, ValueKind.DAILY, likes=value) for key, value in values.items()]


def _upsert(
    conn: sa.Connection, values: Mapping[str, int | None], observed_at: dt.datetime = T0
) -> UpsertCounts:
    return upsert_content_metrics(
        conn,
        organization_id=ORG,
        integration_id=IID,
        metric_date=DAY,
        metrics=_metrics(values),
        observed_at=observed_at,
    )


def _stored(conn: sa.Connection) -> dict[str, tuple[Any, ...]]:
    table = t.content_metrics_daily
    rows = conn.execute(sa.select(table.c.external_content_id, table.c.likes, table.c.observed_at))
    return {row[0]: (row[1], row[2]) for row in rows}


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 3 rows, so that a call of a few rows spans several statements."""
    monkeypatch.setattr(bulk, "PG_BATCH_SIZE", 3)
    monkeypatch.setattr(bulk, "SQLITE_BATCH_SIZE", 3)


@pytest.mark.usefixtures("small_batches")
def test_counts_are_exact_across_batches(engine: sa.Engine) -> None:
    later = T0 + dt.timedelta(hours=1)
    first = {f"k{i:02d}": i for i in range(10)}
    with engine.begin() as conn:
        assert _upsert(conn, first) == UpsertCounts(inserted=10)
    # 5 unchanged, 3 changed, 3 new, spread over the 3-row batches.
    second = {f"k{i:02d}": (i + 100 if i in (1, 5, 9) else i) for i in range(4, 13)}
    second.update({"k00": 0, "k01": 101})
    with engine.begin() as conn:
        counts = _upsert(conn, second, observed_at=later)
        stored = _stored(conn)
    assert counts == UpsertCounts(inserted=3, updated=3, unchanged=5)
    assert len(stored) == 13
    assert stored["k01"] == (101, later)
    assert stored["k05"] == (105, later)
    assert stored["k09"] == (109, later)
    assert stored["k04"] == (4, T0)  # unchanged: observed_at is the first observation
    assert stored["k00"] == (0, T0)
    assert stored["k12"] == (12, later)


def test_null_and_zero_changes_are_updates(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        assert _upsert(conn, {"a": None, "b": 0, "c": 5, "d": None}) == UpsertCounts(inserted=4)
        # NULL -> 0, 0 -> NULL, 5 -> NULL are changes; NULL -> NULL is not.
        counts = _upsert(conn, {"a": 0, "b": None, "c": None, "d": None})
        assert counts == UpsertCounts(updated=3, unchanged=1)
        assert {key: value[0] for key, value in _stored(conn).items()} == {
            "a": 0,
            "b": None,
            "c": None,
            "d": None,
        }


def test_duplicate_keys_last_wins_and_count_once(engine: sa.Engine) -> None:
    metrics = [
        ContentMetrics("a", ValueKind.DAILY, likes=1),
        ContentMetrics("b", ValueKind.DAILY, likes=2),
        ContentMetrics("a", ValueKind.DAILY, likes=3),
    ]
    with engine.begin() as conn:
        counts = _upsert_all(conn, metrics)
        assert counts == UpsertCounts(inserted=2)
        assert {key: value[0] for key, value in _stored(conn).items()} == {"a": 3, "b": 2}


def test_identical_rows_are_not_touched_on_postgres(postgres_engine: sa.Engine) -> None:
    """No new row version and no row lock for identical rows (xmin/xmax unchanged)."""
    engine = postgres_engine
    with engine.begin() as conn:
        _upsert(conn, {"a": 1, "b": 2})

    def versions() -> dict[str, tuple[str, str]]:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT external_content_id, xmin::text, xmax::text FROM content_metrics_daily"
            )
            return {row[0]: (row[1], row[2]) for row in rows}

    before = versions()
    with engine.begin() as conn:
        assert _upsert(conn, {"a": 1, "b": 20}) == UpsertCounts(updated=1, unchanged=1)
    after = versions()
    assert after["a"] == before["a"]
    assert after["b"] != before["b"]


def test_a_rolled_back_upsert_leaves_nothing(engine: sa.Engine) -> None:
    class Stop(Exception):
        pass

    with pytest.raises(Stop), engine.begin() as conn:
        assert _upsert(conn, {"a": 1}) == UpsertCounts(inserted=1)
        raise Stop
    with engine.begin() as conn:
        assert _stored(conn) == {}
        # Two upserts in one transaction see each other's rows.
        assert _upsert(conn, {"a": 1}) == UpsertCounts(inserted=1)
        assert _upsert(conn, {"a": 1, "b": 2}) == UpsertCounts(inserted=1, unchanged=1)


def test_empty_call_writes_nothing(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        assert _upsert(conn, {}) == UpsertCounts()
        assert _stored(conn) == {}


def test_only_one_varying_key_column_is_supported(engine: sa.Engine) -> None:
    spec = bulk.UpsertSpec(t.content_metrics_daily, t.METRICS_KEY, ("likes",), ())
    with engine.begin() as conn, pytest.raises(ValueError, match="one key column"):
        bulk.bulk_upsert(
            conn,
            spec,
            shared={"organization_id": ORG, "observed_at": T0},
            columns=("integration_id", "external_content_id", "metric_date", "likes"),
            rows=[(IID, "a", DAY, 1)],
        )


# --- array encodings ---------------------------------------------------------------------------

INT8_MAX = 2**63 - 1
INT8_MIN = -(2**63)


def _stored_metrics(conn: sa.Connection) -> dict[str, tuple[Any, ...]]:
    table = t.content_metrics_daily
    columns = [table.c[name] for name in ("value_kind", *METRIC_FIELDS)]
    rows = conn.execute(sa.select(table.c.external_content_id, *columns))
    return {row[0]: tuple(row[1:]) for row in rows}


def _upsert_all(conn: sa.Connection, metrics: list[ContentMetrics]) -> UpsertCounts:
    return upsert_content_metrics(
        conn,
        organization_id=ORG,
        integration_id=IID,
        metric_date=DAY,
        metrics=metrics,
        observed_at=T0,
    )


def _values_of(metrics: ContentMetrics) -> list[int | None]:
    return [getattr(metrics, name) for name in METRIC_FIELDS]


def _swap(value: int | None) -> int | None:
    return 0 if value is None else None if value == 0 else 7


def _expected(metrics: list[ContentMetrics]) -> dict[str, tuple[Any, ...]]:
    return {m.external_content_id: (m.value_kind.value, *_values_of(m)) for m in metrics}


def test_integer_array_literal() -> None:
    assert bulk._integer_array_literal([1, None, -3, 0]) == "{1, NULL, -3, 0}"
    assert bulk._integer_array_literal([None]) == "{NULL}"
    assert bulk._integer_array_literal([INT8_MIN, INT8_MAX]) == f"{{{INT8_MIN}, {INT8_MAX}}}"

    class Weird(int):
        def __repr__(self) -> str:
            return "999"

    # Anything but exactly int or None keeps psycopg's own dumping (repr could lie).
    values = [1, Weird(2)]
    assert bulk._integer_array_literal(values) is values
    flags = [1, True]
    assert bulk._integer_array_literal(flags) is flags


def test_integers_round_trip_exactly(engine: sa.Engine) -> None:
    """NULL stays NULL and 0 stays 0 in every column, the int8 bounds and negatives survive."""
    metrics = [
        ContentMetrics("zero", ValueKind.DAILY, **dict.fromkeys(METRIC_FIELDS, 0)),
        ContentMetrics("null", ValueKind.DAILY),
        ContentMetrics(
            "mixed",
            ValueKind.LIFETIME_SNAPSHOT,
            impressions=INT8_MAX,
            reach=INT8_MIN,
            views=-1,
            likes=0,
            video_views=12_345_678_901,
        ),
        ContentMetrics("one", ValueKind.DAILY, saves=1),
    ]
    with engine.begin() as conn:
        assert _upsert_all(conn, metrics) == UpsertCounts(inserted=4)
        assert _stored_metrics(conn) == _expected(metrics)
        assert _upsert_all(conn, metrics) == UpsertCounts(unchanged=4)
        # Every NULL becomes 0, every 0 NULL, anything else 7: all four rows change.
        swapped = [
            ContentMetrics(m.external_content_id, m.value_kind, *map(_swap, _values_of(m)))
            for m in metrics
        ]
        assert _upsert_all(conn, swapped) == UpsertCounts(updated=4)
        assert _stored_metrics(conn) == _expected(swapped)


def test_a_column_of_nulls_and_a_single_row(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        assert _upsert_all(conn, [ContentMetrics("a", ValueKind.DAILY)]) == UpsertCounts(inserted=1)
        assert _stored_metrics(conn) == {"a": ("daily", *([None] * len(METRIC_FIELDS)))}


class Level(enum.IntEnum):
    LOW = 3


def test_int_subclasses_are_stored_as_their_value(engine: sa.Engine) -> None:
    """An int subclass is a valid metric; its repr is not a number, so it goes through psycopg."""
    metrics = [ContentMetrics("a", ValueKind.DAILY, likes=Level.LOW, views=None, shares=0)]
    with engine.begin() as conn:
        assert _upsert_all(conn, metrics) == UpsertCounts(inserted=1)
        assert _stored_metrics(conn)["a"][1:] == tuple(
            {"likes": 3, "shares": 0}.get(name) for name in METRIC_FIELDS
        )
        same = [ContentMetrics("a", ValueKind.DAILY, likes=3, views=None, shares=0)]
        assert _upsert_all(conn, same) == UpsertCounts(unchanged=1)


def test_out_of_range_integers_are_refused_on_postgres(postgres_engine: sa.Engine) -> None:
    metrics = [ContentMetrics("a", ValueKind.DAILY, likes=INT8_MAX + 1)]
    with postgres_engine.begin() as conn, pytest.raises(sa.exc.DataError, match="out of range"):
        _upsert_all(conn, metrics)


def test_awkward_text_keys_round_trip(engine: sa.Engine) -> None:
    """Keys holding array/JSON/CSV syntax, NULL-like words and non-ASCII stay exactly as given."""
    keys = [
        'a,b "c" \\d',
        "{x,y}",
        "NULL",
        "None",
        "(1,2)",
        "tab\tnew\nline",
        "emoji \U0001f600 é ß 中",
        "'quoted'",
    ]
    values = {key: index for index, key in enumerate(keys)}
    with engine.begin() as conn:
        assert _upsert(conn, values) == UpsertCounts(inserted=len(keys))
        assert {key: value[0] for key, value in _stored(conn).items()} == values
        assert _upsert(conn, values) == UpsertCounts(unchanged=len(keys))


# --- validation of the metrics ------------------------------------------------------------------


def test_metric_values_must_be_ints_or_none(engine: sa.Engine) -> None:
    for bad in (True, 1.0, "1"):
        metrics = [ContentMetrics("a", ValueKind.DAILY, likes=bad)]  # type: ignore[arg-type]
        with engine.begin() as conn, pytest.raises(TypeError, match="metric likes"):
            _upsert_all(conn, metrics)
    with engine.begin() as conn:
        assert _stored(conn) == {}


def test_value_kind_and_id_are_checked(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        plain = [ContentMetrics("a", "daily", likes=1)]  # type: ignore[arg-type]
        assert _upsert_all(conn, plain) == UpsertCounts(inserted=1)
        assert _stored_metrics(conn)["a"][0] == "daily"
        with pytest.raises(ValueError, match="ValueKind"):
            _upsert_all(conn, [ContentMetrics("b", "weekly")])  # type: ignore[arg-type]
        for bad_id in ("", None, 5):
            with pytest.raises(ValueError, match="external_content_id"):
                _upsert_all(conn, [ContentMetrics(bad_id, ValueKind.DAILY)])  # type: ignore[arg-type]
        # A bad row is refused even when a later duplicate of its key would replace it.
        duplicates = [
            ContentMetrics("c", ValueKind.DAILY, likes=True),  # type: ignore[arg-type]
            ContentMetrics("c", ValueKind.DAILY, likes=1),
        ]
        with pytest.raises(TypeError, match="metric likes"):
            _upsert_all(conn, duplicates)


# --- Snapshot columns (UpsertSpec.snapshots) ----------------------------------------------------


@contextlib.contextmanager
def without_identical_row_skip(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The identical-row skip sees no stored row (like a read gone stale), so the statement's
    ON CONFLICT SQL alone decides: SQLite's pre-read returns nothing, PostgreSQL's NOT EXISTS
    condition is FALSE. Statements built meanwhile are dropped on both sides of the block."""
    bulk._postgres_statement.cache_clear()
    try:
        with monkeypatch.context() as patch:
            patch.setattr(bulk, "_sqlite_stored", lambda *_args: {})
            patch.setattr(bulk, "_postgres_identical", lambda *_args: "FALSE")
            yield
    finally:
        bulk._postgres_statement.cache_clear()


# A table of its own: the option is generic, not account_metrics_daily's. `total` is a snapshot
# stamped by `total_at`, `seen` one without a stamp, `n` an ordinary compared column.
_snapshots_table = sa.Table(
    "bulk_snapshot_test",
    sa.MetaData(),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("k", sa.String(16), nullable=False),
    sa.Column("n", sa.BigInteger),
    sa.Column("total", sa.BigInteger),
    sa.Column("total_at", t.UTCDateTime()),
    sa.Column("seen", sa.String(16)),
    sa.Column("written_at", t.UTCDateTime(), nullable=False),
    sa.UniqueConstraint("scope", "k"),
)
_SNAPSHOT_SPEC = bulk.UpsertSpec(
    _snapshots_table,
    ("scope", "k"),
    compared=("n",),
    touched=("written_at",),
    snapshots=(bulk.Snapshot("total", stamp="total_at"), bulk.Snapshot("seen")),
)
# (n, total, seen) per key
_Values = Mapping[str, tuple[int | None, int | None, str | None]]


@pytest.fixture
def snapshot_engine(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as conn:
        _snapshots_table.create(conn)
    return engine


def _upsert_snapshots(conn: sa.Connection, values: _Values, at: dt.datetime) -> UpsertCounts:
    rows = [(key, *values[key]) for key in sorted(values)]
    return bulk.bulk_upsert(
        conn,
        _SNAPSHOT_SPEC,
        shared={"scope": "s", "total_at": at, "written_at": at},
        columns=("k", "n", "total", "seen"),
        rows=rows,
    )


def _stored_snapshots(conn: sa.Connection) -> dict[str, tuple[Any, ...]]:
    table = _snapshots_table
    columns = [table.c[name] for name in ("n", "total", "total_at", "seen", "written_at")]
    return {row[0]: tuple(row[1:]) for row in conn.execute(sa.select(table.c.k, *columns))}


T1, T2, T3 = (T0 + dt.timedelta(hours=hours) for hours in (1, 2, 3))


def test_a_null_snapshot_input_keeps_the_stored_value(snapshot_engine: sa.Engine) -> None:
    with snapshot_engine.begin() as conn:
        first = {"a": (1, 100, "x"), "b": (2, 0, "y"), "c": (3, None, None)}
        assert _upsert_snapshots(conn, first, T0) == UpsertCounts(inserted=3)
        # Only the snapshots are NULL: nothing differs, nothing is written.
        nulls = {"a": (1, None, None), "b": (2, None, None), "c": (3, None, None)}
        assert _upsert_snapshots(conn, nulls, T1) == UpsertCounts(unchanged=3)
        # Another column changes: the row is updated, the snapshots stay.
        assert _upsert_snapshots(conn, {"a": (10, None, None)}, T2) == UpsertCounts(updated=1)
        assert _stored_snapshots(conn) == {
            "a": (10, 100, T0, "x", T2),
            "b": (2, 0, T0, "y", T0),  # 0 is a value, kept like any other
            "c": (3, None, None, None, T0),  # inserted without a snapshot: no stamp
        }


def test_the_same_snapshot_keeps_its_stamp(snapshot_engine: sa.Engine) -> None:
    with snapshot_engine.begin() as conn:
        _upsert_snapshots(conn, {"a": (1, 100, "x"), "b": (2, 50, "y")}, T0)
        same = {"a": (1, 100, "x"), "b": (2, 50, "y")}
        assert _upsert_snapshots(conn, same, T1) == UpsertCounts(unchanged=2)
        # The snapshot again, with another change: updated, but the stamp is still T0.
        assert _upsert_snapshots(conn, {"b": (3, 50, "y")}, T2) == UpsertCounts(updated=1)
        assert _stored_snapshots(conn) == {
            "a": (1, 100, T0, "x", T0),
            "b": (3, 50, T0, "y", T2),
        }


def test_a_new_snapshot_updates_the_value_and_its_stamp(snapshot_engine: sa.Engine) -> None:
    with snapshot_engine.begin() as conn:
        _upsert_snapshots(conn, {"a": (1, 100, "x"), "b": (2, None, None), "c": (3, 7, "z")}, T0)
        newer = {"a": (1, 0, "x"), "b": (2, 5, "y"), "c": (3, 7, "w")}
        assert _upsert_snapshots(conn, newer, T1) == UpsertCounts(updated=3)
        assert _stored_snapshots(conn) == {
            "a": (1, 0, T1, "x", T1),  # 100 -> 0: a new value
            "b": (2, 5, T1, "y", T1),  # NULL -> 5
            "c": (3, 7, T0, "w", T1),  # only the stamp-less snapshot changed
        }


@pytest.mark.usefixtures("small_batches")
def test_snapshot_counts_are_exact_across_batches(snapshot_engine: sa.Engine) -> None:
    with snapshot_engine.begin() as conn:
        first = {f"k{i}": (i, 100 + i, None) for i in range(6)}
        assert _upsert_snapshots(conn, first, T0) == UpsertCounts(inserted=6)
        second = {
            "k0": (0, None, None),  # unchanged: NULL snapshot
            "k1": (1, 101, None),  # unchanged: same snapshot
            "k2": (2, 999, None),  # updated: new snapshot
            "k3": (33, None, None),  # updated: other column
            "k4": (4, None, "seen"),  # updated: the stamp-less snapshot
            "k5": (5, 105, None),  # unchanged
            "k6": (6, None, None),  # inserted
            "k7": (7, 7, None),  # inserted
        }
        assert _upsert_snapshots(conn, second, T1) == UpsertCounts(
            inserted=2, updated=3, unchanged=3
        )
        stored = _stored_snapshots(conn)
    assert [stored[key][1:3] for key in ("k0", "k1", "k2", "k3")] == [
        (100, T0),
        (101, T0),
        (999, T1),
        (103, T0),
    ]
    assert (stored["k6"][1:3], stored["k7"][1:3]) == ((None, None), (7, T1))


def test_a_snapshot_can_be_a_shared_value(snapshot_engine: sa.Engine) -> None:
    def upsert(conn: sa.Connection, total: int | None, at: dt.datetime) -> UpsertCounts:
        return bulk.bulk_upsert(
            conn,
            _SNAPSHOT_SPEC,
            shared={"scope": "s", "total": total, "total_at": at, "written_at": at, "seen": None},
            columns=("k", "n"),
            rows=[("a", 1), ("b", 2)],
        )

    with snapshot_engine.begin() as conn:
        assert upsert(conn, None, T0) == UpsertCounts(inserted=2)
        assert upsert(conn, 5, T1) == UpsertCounts(updated=2)
        assert upsert(conn, None, T2) == UpsertCounts(unchanged=2)
        assert upsert(conn, 5, T3) == UpsertCounts(unchanged=2)
        assert {row[1:3] for row in _stored_snapshots(conn).values()} == {(5, T1)}


def test_the_snapshot_rules_are_in_the_sql(
    snapshot_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with snapshot_engine.begin() as conn:
        _upsert_snapshots(conn, {"a": (1, 100, "x"), "b": (2, 100, "x"), "c": (3, 100, "x")}, T0)
    with without_identical_row_skip(monkeypatch), snapshot_engine.begin() as conn:
        # Insert-vs-update comes from the (here faked) read on SQLite: only `written` is exact.
        same = _upsert_snapshots(conn, {"a": (1, None, None), "b": (2, 100, "x")}, T1)
        assert same.written == 0
        if snapshot_engine.dialect.name == "postgresql":
            assert same == UpsertCounts(unchanged=2)
        changed = {"a": (10, None, None), "b": (2, 100, "y"), "c": (3, 200, None)}
        assert _upsert_snapshots(conn, changed, T2).written == 3
        assert _stored_snapshots(conn) == {
            "a": (10, 100, T0, "x", T2),
            "b": (2, 100, T0, "y", T2),
            "c": (3, 200, T2, "x", T2),
        }


def test_identical_snapshot_rows_are_not_touched_on_postgres(postgres_engine: sa.Engine) -> None:
    """A row whose only difference is a NULL snapshot input gets no new version and no row
    lock (xmin/xmax unchanged): the NOT EXISTS skip knows the rule too."""
    versions = "SELECT xmin::text, xmax::text FROM bulk_snapshot_test"
    with postgres_engine.begin() as conn:
        _snapshots_table.create(conn)
        _upsert_snapshots(conn, {"a": (1, 100, "x")}, T0)
    with postgres_engine.begin() as conn:
        before = conn.exec_driver_sql(versions).one()
        assert _upsert_snapshots(conn, {"a": (1, None, None)}, T1) == UpsertCounts(unchanged=1)
    with postgres_engine.begin() as conn:
        assert conn.exec_driver_sql(versions).one() == before


def test_identical_snapshot_rows_are_not_sent_on_sqlite(tmp_path: Path) -> None:
    """SQLite's pre-read knows the rule too: no INSERT runs for rows it keeps unchanged."""
    engine = make_engine(f"sqlite:///{tmp_path / 'snapshots.sqlite'}")
    statements: list[str] = []
    try:
        with engine.begin() as conn:
            _snapshots_table.create(conn)
            _upsert_snapshots(conn, {"a": (1, 100, "x"), "b": (2, 5, "y")}, T0)
        sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        with engine.begin() as conn:
            same = {"a": (1, None, None), "b": (2, 5, None)}
            assert _upsert_snapshots(conn, same, T1) == UpsertCounts(unchanged=2)
    finally:
        engine.dispose()
    assert not [statement for statement in statements if statement.startswith("INSERT")]


def test_snapshot_rules_hold_against_a_concurrent_writer_on_postgres(
    postgres_engine: sa.Engine,
) -> None:
    """A writer whose NOT EXISTS read a row another transaction is rewriting waits for it, then
    the ON CONFLICT SQL applies the rules to the row as that transaction left it."""
    engine = postgres_engine
    with engine.begin() as conn:
        _snapshots_table.create(conn)
        _upsert_snapshots(conn, {"a": (1, 100, "x"), "b": (2, 100, "x")}, T0)
    results: dict[str, Any] = {}

    def second_writer() -> None:
        with engine.begin() as conn:
            results["pid"] = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            # "a": the same new snapshot as the first writer's; "b": no snapshot, n changes.
            values = {"a": (1, 200, "x"), "b": (3, None, None)}
            results["counts"] = _upsert_snapshots(conn, values, T2)

    with engine.begin() as first:
        assert _upsert_snapshots(first, {"a": (1, 200, "x"), "b": (2, 300, "x")}, T1) == (
            UpsertCounts(updated=2)
        )
        thread = threading.Thread(target=second_writer)
        thread.start()
        _wait_until_blocked(engine, results, thread)
    thread.join(timeout=30)
    assert results["counts"] == UpsertCounts(updated=1, unchanged=1)
    with engine.connect() as conn:
        assert _stored_snapshots(conn) == {
            "a": (1, 200, T1, "x", T1),  # the same snapshot: the first writer's stamp stays
            "b": (3, 300, T1, "x", T2),  # NULL kept the first writer's snapshot
        }


def _wait_until_blocked(engine: sa.Engine, results: Mapping[str, Any], thread: Any) -> None:
    """Wait until the second writer's backend waits for a row lock (10 s at most)."""
    deadline = time.monotonic() + 10
    with engine.connect() as conn:
        while time.monotonic() < deadline and thread.is_alive():
            if "pid" in results:
                wait = conn.exec_driver_sql(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %(pid)s",
                    {"pid": results["pid"]},
                ).scalar()
                if wait == "Lock":
                    return
            time.sleep(0.01)
    raise AssertionError("the second writer never waited for the first one's row lock")


def test_snapshot_spec_is_checked(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="more than one role"):
        bulk.UpsertSpec(
            _snapshots_table, ("scope", "k"), ("n", "total"), (), (bulk.Snapshot("total"),)
        )
    with pytest.raises(ValueError, match="more than one role"):
        bulk.UpsertSpec(
            _snapshots_table,
            ("scope", "k"),
            ("n",),
            ("written_at",),
            (bulk.Snapshot("total", "written_at"),),
        )
    with engine.begin() as conn, pytest.raises(ValueError, match=r"missing.*\['total_at'\]"):
        bulk.bulk_upsert(
            conn,
            _SNAPSHOT_SPEC,
            shared={"scope": "s", "written_at": T0},
            columns=("k", "n", "total", "seen"),
            rows=[("a", 1, 2, None)],
        )
