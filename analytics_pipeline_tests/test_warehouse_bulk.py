"""The bulk upsert path (warehouse/bulk.py), on SQLite and PostgreSQL: exact counts across
batches, NULL handling, identical rows left alone, the caller's transaction, the array encodings
(integers as text literals, anything else through psycopg) and the metrics' validation."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from analytics_pipeline.records import METRIC_FIELDS, ContentMetrics, ValueKind
from analytics_pipeline.warehouse import UpsertCounts, bulk, upsert_content_metrics
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
