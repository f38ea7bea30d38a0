"""The bulk upsert path (warehouse/bulk.py), on SQLite and PostgreSQL: exact counts across
batches, NULL handling, identical rows left alone, the caller's transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
import sqlalchemy as sa

from analytics_pipeline.platforms.base import ContentMetrics, ValueKind
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
        counts = upsert_content_metrics(
            conn,
            organization_id=ORG,
            integration_id=IID,
            metric_date=DAY,
            metrics=metrics,
            observed_at=T0,
        )
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
