"""Revision 0002: error class 'permanent_config', content reference_type, account metrics and
the content_metrics_daily_change view. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from analytics_pipeline.records import (
    METRIC_FIELDS,
    AccountMetrics,
    ContentFormat,
    ContentItem,
    ContentMetrics,
    ErrorClass,
    ValueKind,
)
from analytics_pipeline.warehouse import (
    UpsertCounts,
    add_integration,
    make_engine,
    migrate,
    open_failures,
    record_partition_load,
    resolve_failures,
    upsert_account_metrics,
    upsert_content_items,
    upsert_content_metrics,
)
from analytics_pipeline.warehouse import tables as t
from analytics_pipeline.warehouse.migrations import known_versions, pending_migrations
from analytics_pipeline_tests.helpers import (
    IID,
    ORG,
    T0,
    acme_integration,
    assert_schema_matches_tables,
    record_test_failure,
)
from analytics_pipeline_tests.test_warehouse_bulk import without_identical_row_skip

# Across a month end, so that "the day before" is real date arithmetic, not string surgery.
FEB28 = dt.date(2026, 2, 28)
MAR1 = dt.date(2026, 3, 1)
MAR2 = dt.date(2026, 3, 2)
MAR3 = dt.date(2026, 3, 3)
MAR4 = dt.date(2026, 3, 4)
MAR5 = dt.date(2026, 3, 5)

_FAILURE_COLUMNS = list(t.ingestion_failures.c)


def _metrics(
    conn: sa.Connection,
    day: dt.date,
    metrics: Sequence[ContentMetrics],
    integration_id: str = IID,
) -> UpsertCounts:
    return upsert_content_metrics(
        conn,
        organization_id=ORG,
        integration_id=integration_id,
        metric_date=day,
        metrics=metrics,
        observed_at=T0,
    )


def _snap(content_id: str, **values: int | None) -> ContentMetrics:
    return ContentMetrics(content_id, ValueKind.LIFETIME_SNAPSHOT, **values)


def _daily(content_id: str, **values: int | None) -> ContentMetrics:
    return ContentMetrics(content_id, ValueKind.DAILY, **values)


# --- migrating an existing 0001 database ------------------------------------------------------


def test_unknown_target_version_is_refused(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    try:
        with pytest.raises(ValueError, match="Unknown migration version"):
            migrate(engine, target="0099")
        assert pending_migrations(engine) == known_versions()
    finally:
        engine.dispose()


def test_0001_database_migrates_to_0002_keeping_rows(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    try:
        assert migrate(engine, target="0001") == ["0001"]
        assert pending_migrations(engine) == ["0002", "0003", *known_versions()[3:]]
        _fill_a_0001_database(engine)
        # The 0001 CHECK refuses the new class: the widening below is real.
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            record_test_failure(conn, ErrorClass.PERMANENT_CONFIG, T0, f"2026-03-01|{IID}")
        with engine.connect() as conn:
            failures_before = conn.execute(
                sa.select(*_FAILURE_COLUMNS).order_by(t.ingestion_failures.c.id)
            ).all()
            content_before = conn.execute(
                sa.select(t.content_items.c.external_content_id, t.content_items.c.caption)
            ).all()

        assert migrate(engine) == ["0002", "0003", *known_versions()[3:]]
        assert pending_migrations(engine) == []
        assert_schema_matches_tables(engine)

        with engine.connect() as conn:
            failures_after = conn.execute(
                sa.select(*_FAILURE_COLUMNS).order_by(t.ingestion_failures.c.id)
            ).all()
            content_after = conn.execute(
                sa.select(
                    t.content_items.c.external_content_id,
                    t.content_items.c.caption,
                    t.content_items.c.reference_type,
                )
            ).all()
            changes = conn.execute(
                sa.select(
                    t.content_metrics_daily_change.c.metric_date,
                    t.content_metrics_daily_change.c.likes_on_day,
                ).order_by(t.content_metrics_daily_change.c.metric_date)
            ).all()
        assert len(failures_before) == 3
        assert failures_after == failures_before  # ids, texts, timestamps, resolved_at
        assert [(r[0], r[1], None) for r in content_before] == [tuple(r) for r in content_after]
        assert [tuple(r) for r in changes] == [(FEB28, None), (MAR1, 4)]

        with engine.begin() as conn:
            record_test_failure(
                conn, ErrorClass.PERMANENT_CONFIG, T0 + dt.timedelta(hours=1), f"2026-03-01|{IID}"
            )
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(
                sa.insert(t.ingestion_failures).values(
                    organization_id=ORG,
                    integration_id=IID,
                    asset="content_metrics",
                    partition_key="k",
                    error_class="junk",
                    message="m",
                    occurred_at=T0,
                )
            )
        with engine.connect() as conn:
            still_open = open_failures(conn, IID)
        newest = still_open[-1]
        assert newest.error_class == "permanent_config"
        assert newest.id > max(row.id for row in failures_before)
        assert [f.error_class for f in still_open] == ["invalid_response", "permanent_config"]
    finally:
        engine.dispose()


def _fill_a_0001_database(engine: sa.Engine) -> None:
    """Rows of every 0001 table, written the way 0001-era code wrote them."""
    with engine.begin() as conn:
        add_integration(conn, **acme_integration())
        conn.execute(
            sa.insert(t.content_items).values(
                organization_id=ORG,
                integration_id=IID,
                platform="facebook",
                external_content_id="p1",
                format="POST",
                caption="hello",
                hashtags=["a"],
                permalink=None,
                published_at=T0,
                first_seen_at=T0,
                updated_at=T0,
            )
        )
        _metrics(conn, FEB28, [_snap("p1", likes=10)])
        _metrics(conn, MAR1, [_snap("p1", likes=14)])
        record_test_failure(
            conn, ErrorClass.TRANSIENT, T0 - dt.timedelta(hours=2), f"2026-03-01|{IID}"
        )
        record_test_failure(
            conn, ErrorClass.PERMANENT_CREDENTIAL, T0 - dt.timedelta(hours=1), f"2026-03-01|{IID}"
        )
        resolve_failures(
            conn,
            integration_id=IID,
            asset="content_metrics",
            partition_key=f"2026-03-01|{IID}",
            resolved_at=T0,
        )
        record_test_failure(conn, ErrorClass.INVALID_RESPONSE, T0, f"2026-03-01|{IID}")
        record_partition_load(
            conn,
            integration_id=IID,
            asset="content_metrics",
            partition_date=MAR1,
            loaded_at=T0,
            run_id="run-1",
            rows_written=1,
            details={},
        )


# --- content_items.reference_type -------------------------------------------------------------


def _item(content_id: str, reference_type: str | None) -> ContentItem:
    return ContentItem(
        external_content_id=content_id,
        format=ContentFormat.TEXT,
        published_at=T0,
        caption="hi",
        reference_type=reference_type,
    )


def _upsert_items(conn: sa.Connection, items: Sequence[ContentItem]) -> UpsertCounts:
    return upsert_content_items(
        conn, organization_id=ORG, integration_id=IID, platform="x", items=items, now=T0
    )


def test_reference_type_round_trip_and_change_detection(engine: sa.Engine) -> None:
    items = [_item("a", None), _item("b", "quote"), _item("c", "reply"), _item("d", "reshare")]
    with engine.begin() as conn:
        assert _upsert_items(conn, items) == UpsertCounts(inserted=4)
        assert _upsert_items(conn, items) == UpsertCounts(unchanged=4)
        assert _upsert_items(conn, [_item("a", "reply"), _item("b", None)]) == UpsertCounts(
            updated=2
        )
        stored = dict(
            conn.execute(
                sa.select(t.content_items.c.external_content_id, t.content_items.c.reference_type)
            ).all()
        )
    assert stored == {"a": "reply", "b": None, "c": "reply", "d": "reshare"}


def test_unknown_reference_type_is_refused(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        with pytest.raises(ValueError, match="reference_type"):
            _upsert_items(conn, [_item("a", "retweet")])
        # Refused before any SQL: the (PostgreSQL) transaction is still usable.
        assert _upsert_items(conn, [_item("a", None)]) == UpsertCounts(inserted=1)
    # The database refuses it too, for writers that bypass the code.
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            sa.update(t.content_items).values(reference_type="retweet"),
        )


# --- account_metrics_daily --------------------------------------------------------------------


def _account(
    conn: sa.Connection,
    metrics: AccountMetrics,
    observed_at: dt.datetime,
    day: dt.date = MAR1,
    integration_id: str = IID,
) -> UpsertCounts:
    return upsert_account_metrics(
        conn,
        organization_id=ORG,
        integration_id=integration_id,
        metric_date=day,
        metrics=metrics,
        observed_at=observed_at,
    )


def _account_rows(engine: sa.Engine) -> dict[tuple[str, dt.date], Any]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.account_metrics_daily)).all()
    return {(row.integration_id, row.metric_date): row for row in rows}


def test_account_metrics_upsert_is_idempotent_and_keeps_the_followers_snapshot(
    engine: sa.Engine,
) -> None:
    hour = dt.timedelta(hours=1)
    first = AccountMetrics(followers_total=100, new_followers=5, reach=0, impressions=None)
    with engine.begin() as conn:
        assert _account(conn, first, T0) == UpsertCounts(inserted=1)
    row = _account_rows(engine)[(IID, MAR1)]
    assert (row.followers_total, row.new_followers, row.reach, row.impressions) == (100, 5, 0, None)
    assert (row.followers_observed_at, row.observed_at) == (T0, T0)

    with engine.begin() as conn:
        # The same values again: nothing written, observed_at stays the first observation.
        assert _account(conn, first, T0 + hour) == UpsertCounts(unchanged=1)
        # A backfill of the day without a snapshot: the per-day values change, the snapshot and
        # the time it was taken stay.
        backfill = AccountMetrics(new_followers=6, reach=0, impressions=40)
        assert _account(conn, backfill, T0 + 2 * hour) == UpsertCounts(updated=1)
        assert _account(conn, backfill, T0 + 3 * hour) == UpsertCounts(unchanged=1)
    row = _account_rows(engine)[(IID, MAR1)]
    assert (row.followers_total, row.followers_observed_at) == (100, T0)
    assert (row.new_followers, row.impressions, row.observed_at) == (6, 40, T0 + 2 * hour)

    with engine.begin() as conn:
        same_snapshot = AccountMetrics(
            followers_total=100, new_followers=6, reach=0, impressions=40
        )
        assert _account(conn, same_snapshot, T0 + 4 * hour) == UpsertCounts(unchanged=1)
        newer_snapshot = AccountMetrics(followers_total=0, new_followers=6, reach=0, impressions=40)
        assert _account(conn, newer_snapshot, T0 + 5 * hour) == UpsertCounts(updated=1)
        # Per-day values are replaced by the latest observation, NULL included.
        assert _account(conn, AccountMetrics(), T0 + 6 * hour) == UpsertCounts(updated=1)
        other_day = _account(conn, AccountMetrics(profile_views=3), T0 + 6 * hour, day=MAR2)
        other_integration = _account(conn, first, T0, integration_id="acme-li")
    assert (other_day, other_integration) == (UpsertCounts(inserted=1), UpsertCounts(inserted=1))
    rows = _account_rows(engine)
    assert len(rows) == 3
    row = rows[(IID, MAR1)]
    assert (row.followers_total, row.followers_observed_at) == (0, T0 + 5 * hour)  # 0 is a value
    assert (row.new_followers, row.reach, row.impressions) == (None, None, None)
    assert row.observed_at == T0 + 6 * hour
    day_two = rows[(IID, MAR2)]
    assert (day_two.followers_total, day_two.followers_observed_at) == (None, None)
    assert day_two.profile_views == 3


def test_account_upsert_sql_keeps_the_snapshot_even_after_a_stale_read(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQL alone (the identical-row skip sees no stored row) applies the same rules."""
    with engine.begin() as conn:
        _account(conn, AccountMetrics(followers_total=100, reach=1), T0)
    later = T0 + dt.timedelta(hours=1)

    with without_identical_row_skip(monkeypatch), engine.begin() as conn:
        # Insert-vs-update comes from the (here faked) read on SQLite: only `written` is exact.
        same = _account(conn, AccountMetrics(followers_total=100, reach=1), later)
        assert same.written == 0
        if engine.dialect.name == "postgresql":
            assert same == UpsertCounts(unchanged=1)
        assert _account(conn, AccountMetrics(reach=2), later).written == 1
    stored = _account_rows(engine)[(IID, MAR1)]
    assert (stored.followers_total, stored.followers_observed_at) == (100, T0)
    assert (stored.reach, stored.observed_at) == (2, later)


def test_account_upsert_refuses_bad_input(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        with pytest.raises(TypeError, match="reach"):
            _account(conn, AccountMetrics(reach=True), T0)
        with pytest.raises(TypeError, match="followers_total"):
            _account(conn, AccountMetrics(followers_total=1.5), T0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="timezone-aware"):
            _account(conn, AccountMetrics(), dt.datetime(2026, 3, 1))
        with pytest.raises(TypeError, match="metric_date"):
            _account(conn, AccountMetrics(), T0, day=T0)
        with pytest.raises(TypeError, match="AccountMetrics"):
            _account(conn, _daily("a"), T0)  # type: ignore[arg-type]
        assert conn.scalar(sa.select(sa.func.count()).select_from(t.account_metrics_daily)) == 0


# --- content_metrics_daily_change -------------------------------------------------------------


def _change_rows(conn: sa.Connection) -> dict[tuple[str, str, dt.date], tuple[Any, ...]]:
    view = t.content_metrics_daily_change
    query = sa.select(
        view.c.integration_id,
        view.c.external_content_id,
        view.c.metric_date,
        view.c.value_kind,
        view.c.likes_on_day,
        view.c.comments_on_day,
        view.c.views_on_day,
        view.c.change_source,
        view.c.counter_decreased,
    )
    rows = conn.execute(query).all()
    by_key = {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}
    assert len(by_key) == len(rows), "the view repeats a key"
    return by_key


def test_change_view_gives_what_each_item_got_on_each_day(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _metrics(conn, FEB28, [_snap("snap", likes=10, comments=1), _daily("daily", likes=4)])
        # Another integration's item with the same id must not be taken as the previous day.
        _metrics(conn, FEB28, [_snap("snap", likes=1_000)], integration_id="other")
        _metrics(conn, MAR1, [_snap("snap", likes=15, comments=1, views=100)])
        _metrics(conn, MAR1, [_daily("daily", likes=0), _daily("mixed", likes=3)])
        _metrics(conn, MAR2, [_snap("mixed", likes=50), _snap("snap", likes=16, comments=2)])
        # MAR3: no row for "snap" (a gap day)
        _metrics(conn, MAR4, [_snap("snap", likes=20, comments=2, views=150)])
        _metrics(conn, MAR5, [_snap("snap", likes=18, comments=3, views=150)])
        changes = _change_rows(conn)
        base_rows = conn.scalar(sa.select(sa.func.count()).select_from(t.content_metrics_daily))
        negative_in_base_table = conn.scalar(
            sa.select(sa.func.count())
            .select_from(t.content_metrics_daily)
            .where(sa.or_(*(t.content_metrics_daily.c[name] < 0 for name in METRIC_FIELDS)))
        )

    snap, daily, diff = "lifetime_snapshot", "daily", "snapshot_difference"
    assert changes == {
        # first day observed: nothing to subtract
        (IID, "snap", FEB28): (snap, None, None, None, diff, False),
        (IID, "snap", MAR1): (snap, 5, 0, None, diff, False),  # views NULL the day before
        (IID, "snap", MAR2): (snap, 1, 1, None, diff, False),  # views NULL on MAR2
        (IID, "snap", MAR4): (snap, None, None, None, diff, False),  # MAR3 missing: never guessed
        (IID, "snap", MAR5): (snap, -2, 1, 0, diff, True),  # revised down: kept and flagged
        (IID, "daily", FEB28): (daily, 4, None, None, "platform_daily", False),
        (IID, "daily", MAR1): (daily, 0, None, None, "platform_daily", False),
        (IID, "mixed", MAR1): (daily, 3, None, None, "platform_daily", False),
        # the day before holds a daily value, not a snapshot: no difference
        (IID, "mixed", MAR2): (snap, None, None, None, diff, False),
        ("other", "snap", FEB28): (snap, None, None, None, diff, False),
    }
    assert base_rows == len(changes)  # one view row per base row
    assert all(type(row[-1]) is bool for row in changes.values())
    assert negative_in_base_table == 0  # the negative difference lives only in the view
