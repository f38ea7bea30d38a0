"""Warehouse tests; those taking `engine` or `warehouse_url` run on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from analytics_pipeline.records import (
    ContentFormat,
    ContentItem,
    ContentMetrics,
    ErrorClass,
    ValueKind,
)
from analytics_pipeline.warehouse import (
    IntegrationExistsError,
    UnknownIntegrationError,
    UpsertCounts,
    add_integration,
    content_ids_published_between,
    get_integration,
    list_integrations,
    make_engine,
    migrate,
    open_failures,
    permalinks_published_between,
    record_failure,
    record_partition_load,
    remove_integration,
    resolve_failures,
    set_integration_status,
    upsert_content_items,
    upsert_content_metrics,
    upsert_integration,
    validate_credential_env,
    validate_integration_id,
)
from analytics_pipeline.warehouse import tables as t
from analytics_pipeline.warehouse.migrations import known_versions, pending_migrations
from analytics_pipeline_tests.helpers import (
    IID,
    ORG,
    T0,
    acme_integration,
    assert_schema_matches_tables,
    migrate_concurrently,
)

DAY = dt.date(2026, 3, 1)


def _item(content_id: str, caption: str | None = "hello", **changes: Any) -> ContentItem:
    values: dict[str, Any] = {
        "external_content_id": content_id,
        "format": ContentFormat.POST,
        "published_at": T0 - dt.timedelta(hours=1),
        "caption": caption,
        "hashtags": ("launch", "spring"),
        "permalink": f"https://example.test/p/{content_id}",
    }
    values.update(changes)
    return ContentItem(**values)


def _upsert_items(
    conn: sa.Connection, items: Sequence[ContentItem], now: dt.datetime = T0
) -> UpsertCounts:
    return upsert_content_items(
        conn, organization_id=ORG, integration_id=IID, platform="facebook", items=items, now=now
    )


def _upsert_metrics(
    conn: sa.Connection,
    metrics: Sequence[ContentMetrics],
    observed_at: dt.datetime = T0,
    metric_date: dt.date = DAY,
) -> UpsertCounts:
    return upsert_content_metrics(
        conn,
        organization_id=ORG,
        integration_id=IID,
        metric_date=metric_date,
        metrics=metrics,
        observed_at=observed_at,
    )


def _run_all(threads: Sequence[threading.Thread], engines: Sequence[sa.Engine]) -> None:
    """Start the threads together, wait for them (60 s each at most), dispose the engines."""
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for engine in engines:
        engine.dispose()


def _raw_rows(engine: sa.Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    """Rows exactly as stored (no type conversion), in key order."""
    with engine.connect() as conn:
        result = conn.exec_driver_sql(f"SELECT * FROM {table.name} ORDER BY external_content_id")
        return [tuple(row) for row in result]


# --- engine and migrations -------------------------------------------------------------------


def test_migrate_is_idempotent(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    try:
        assert known_versions()[:3] == ["0001", "0002", "0003"]
        assert pending_migrations(engine) == known_versions()
        assert migrate(engine) == known_versions()
        assert migrate(engine) == []
        assert migrate(engine, target="0001") == []  # behind the database: never undone
        assert pending_migrations(engine) == []
        with engine.connect() as conn:
            versions = list(conn.scalars(sa.text("SELECT version_num FROM alembic_version")))
            tables = set(sa.inspect(conn).get_table_names())
        assert versions == known_versions()[-1:]
        assert {table.name for table in t.metadata.sorted_tables} <= tables
        assert "schema_migrations" not in tables
    finally:
        engine.dispose()


def test_concurrent_migrations_apply_each_step_once(warehouse_url: str) -> None:
    engines = [make_engine(warehouse_url) for _ in range(2)]
    try:
        results, errors = migrate_concurrently(engines)
    finally:
        for engine in engines:
            engine.dispose()
    assert errors == []
    # One transaction applies every revision: the process that got the lock first does it all,
    # the other waits for it, then finds nothing to do.
    assert sorted(results) == [[], known_versions()]


def test_migrated_schema_matches_tables_module(engine: sa.Engine) -> None:
    """The frozen revisions must produce what tables.py (the code's view) describes."""
    assert_schema_matches_tables(engine)


def test_unique_keys_have_no_nullable_column() -> None:
    for table in t.metadata.sorted_tables:
        for constraint in table.constraints:
            if isinstance(constraint, sa.UniqueConstraint | sa.PrimaryKeyConstraint):
                assert not any(c.nullable for c in constraint.columns), table.name


# --- content items ---------------------------------------------------------------------------


def test_same_items_twice_leave_rows_identical(engine: sa.Engine) -> None:
    items = [_item("b"), _item("a"), _item("c", caption=None, hashtags=())]
    with engine.begin() as conn:
        assert _upsert_items(conn, items) == UpsertCounts(inserted=3)
    before = _raw_rows(engine, t.content_items)
    with engine.begin() as conn:
        counts = _upsert_items(conn, items, now=T0 + dt.timedelta(days=1))
    assert counts == UpsertCounts(unchanged=3)
    assert _raw_rows(engine, t.content_items) == before
    assert [row[3] for row in before] == ["a", "b", "c"]


def test_changed_caption_updates_and_keeps_first_seen(engine: sa.Engine) -> None:
    later = T0 + dt.timedelta(days=1)
    with engine.begin() as conn:
        _upsert_items(conn, [_item("a"), _item("b")])
    with engine.begin() as conn:
        counts = _upsert_items(conn, [_item("a", caption="edited"), _item("b"), _item("c")], later)
    assert counts == UpsertCounts(inserted=1, updated=1, unchanged=1)
    with engine.connect() as conn:
        rows = {
            row.external_content_id: row for row in conn.execute(sa.select(t.content_items)).all()
        }
    assert rows["a"].caption == "edited"
    assert rows["a"].first_seen_at == T0
    assert rows["a"].updated_at == later
    assert rows["b"].updated_at == T0
    assert rows["c"].first_seen_at == later
    assert rows["a"].hashtags == ["launch", "spring"]
    assert rows["a"].published_at.tzinfo is not None
    assert rows["a"].published_at.utcoffset() == dt.timedelta(0)


def test_hashtag_change_is_an_update(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _upsert_items(conn, [_item("a")])
        assert _upsert_items(conn, [_item("a", hashtags=("launch",))]) == UpsertCounts(updated=1)
        stored = conn.scalar(sa.select(t.content_items.c.hashtags))
    assert stored == ["launch"]


def test_duplicate_keys_in_one_call_last_wins(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        counts = _upsert_items(conn, [_item("a", caption="first"), _item("a", caption="last")])
        captions = list(conn.scalars(sa.select(t.content_items.c.caption)))
    assert counts == UpsertCounts(inserted=1)
    assert captions == ["last"]


def test_many_items_are_written_in_a_few_sorted_statements(engine: sa.Engine) -> None:
    items = [_item(f"c{i:05d}") for i in reversed(range(2_500))]
    writes: list[list[str]] = []

    def spy(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if "INSERT INTO" not in statement:
            return
        if executemany:  # SQLite: one parameter tuple per row, the shared values first
            writes.append([row[5] for row in parameters])
        else:  # PostgreSQL: one array per varying column, external_content_id first
            writes.append(list(parameters["a0"]))

    sa.event.listen(engine, "before_cursor_execute", spy)
    try:
        with engine.begin() as conn:
            counts = _upsert_items(conn, items)
    finally:
        sa.event.remove(engine, "before_cursor_execute", spy)
    assert counts == UpsertCounts(inserted=2_500)
    assert [len(batch) for batch in writes] == [2_500]
    flat = [content_id for batch in writes for content_id in batch]
    assert flat == sorted(flat)
    assert set(flat) == {item.external_content_id for item in items}
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(t.content_items)) == 2_500


def test_published_between_is_half_open_and_sorted(engine: sa.Engine) -> None:
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    items = [
        _item("z-start", published_at=start),
        _item("a-inside", published_at=start + dt.timedelta(hours=5), permalink=None),
        _item("before", published_at=start - dt.timedelta(microseconds=1)),
        _item("at-end", published_at=end),
    ]
    with engine.begin() as conn:
        _upsert_items(conn, items)
        upsert_content_items(
            conn,
            organization_id=ORG,
            integration_id="other",
            platform="facebook",
            items=[_item("other-inside", published_at=start)],
            now=T0,
        )
        found = content_ids_published_between(
            conn, organization_id=ORG, integration_id=IID, start=start, end=end
        )
        # The same window expressed in another time zone selects the same rows.
        plus_two = dt.timezone(dt.timedelta(hours=2))
        shifted = content_ids_published_between(
            conn,
            organization_id=ORG,
            integration_id=IID,
            start=start.astimezone(plus_two),
            end=end.astimezone(plus_two),
        )
        permalinks = permalinks_published_between(
            conn, organization_id=ORG, integration_id=IID, start=start, end=end
        )
    assert found == ["a-inside", "z-start"]
    assert shifted == found
    assert list(permalinks.items()) == [
        ("a-inside", None),
        ("z-start", "https://example.test/p/z-start"),
    ]


def test_naive_datetimes_are_refused(engine: sa.Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match="timezone-aware"):
        _upsert_items(conn, [_item("a")], now=dt.datetime(2026, 3, 1))
    with engine.begin() as conn, pytest.raises(ValueError, match="timezone-aware"):
        _upsert_items(conn, [_item("a", published_at=dt.datetime(2026, 3, 1))])


def test_unknown_platform_is_refused(engine: sa.Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match="platform"):
        upsert_content_items(
            conn, organization_id=ORG, integration_id=IID, platform="orkut", items=[], now=T0
        )


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_null_stays_null_and_zero_stays_zero(engine: sa.Engine) -> None:
    metrics = [ContentMetrics("a", ValueKind.LIFETIME_SNAPSHOT, impressions=0, likes=7)]
    with engine.begin() as conn:
        assert _upsert_metrics(conn, metrics) == UpsertCounts(inserted=1)
        row = conn.execute(sa.select(t.content_metrics_daily)).one()
    assert row.impressions == 0
    assert row.likes == 7
    assert row.reach is None
    assert row.video_views is None
    assert row.value_kind == "lifetime_snapshot"
    assert row.metric_date == DAY


def test_identical_metrics_are_not_rewritten(engine: sa.Engine) -> None:
    metrics = [
        ContentMetrics("a", ValueKind.DAILY, impressions=10, likes=0),
        ContentMetrics("b", ValueKind.DAILY),
    ]
    with engine.begin() as conn:
        _upsert_metrics(conn, metrics)
    before = _raw_rows(engine, t.content_metrics_daily)
    later = T0 + dt.timedelta(hours=6)
    with engine.begin() as conn:
        assert _upsert_metrics(conn, metrics, observed_at=later) == UpsertCounts(unchanged=2)
    assert _raw_rows(engine, t.content_metrics_daily) == before
    changed = [ContentMetrics("a", ValueKind.DAILY, impressions=12, likes=0), metrics[1]]
    with engine.begin() as conn:
        counts = _upsert_metrics(conn, changed, observed_at=later)
        row = conn.execute(
            sa.select(t.content_metrics_daily).where(
                t.content_metrics_daily.c.external_content_id == "a"
            )
        ).one()
    assert counts == UpsertCounts(updated=1, unchanged=1)
    assert (row.impressions, row.likes, row.observed_at) == (12, 0, later)


def test_metrics_of_other_days_are_separate_rows(engine: sa.Engine) -> None:
    metrics = [ContentMetrics("a", ValueKind.DAILY, views=1)]
    with engine.begin() as conn:
        _upsert_metrics(conn, metrics)
        counts = _upsert_metrics(conn, metrics, metric_date=DAY + dt.timedelta(days=1))
        total = conn.scalar(sa.select(sa.func.count()).select_from(t.content_metrics_daily))
    assert counts == UpsertCounts(inserted=1)
    assert total == 2


def test_metric_date_must_be_a_date(engine: sa.Engine) -> None:
    with engine.begin() as conn, pytest.raises(TypeError, match="metric_date"):
        _upsert_metrics(conn, [ContentMetrics("a", ValueKind.DAILY)], metric_date=T0)  # type: ignore[arg-type]


def test_crash_mid_partition_keeps_previous_state(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _upsert_items(conn, [_item("a")])
        _upsert_metrics(conn, [ContentMetrics("a", ValueKind.DAILY, likes=1)])
    items_before = _raw_rows(engine, t.content_items)
    metrics_before = _raw_rows(engine, t.content_metrics_daily)

    class Crash(Exception):
        pass

    with pytest.raises(Crash), engine.begin() as conn:
        assert _upsert_items(conn, [_item("a", caption="new"), _item("b")]).written == 2
        _upsert_metrics(conn, [ContentMetrics("a", ValueKind.DAILY, likes=99)])
        raise Crash
    assert _raw_rows(engine, t.content_items) == items_before
    assert _raw_rows(engine, t.content_metrics_daily) == metrics_before


def test_concurrent_overlapping_writers_count_exactly(warehouse_url: str) -> None:
    """Two writers upsert the same keys at once: no deadlock/lock error, each row counted once."""
    migrate_engine = make_engine(warehouse_url)
    migrate(migrate_engine)
    migrate_engine.dispose()
    keys = [f"c{i:04d}" for i in range(300)]
    payloads = [[_item(k) for k in keys], [_item(k) for k in reversed(keys)]]
    engines = [make_engine(warehouse_url) for _ in payloads]
    barrier = threading.Barrier(len(payloads))
    counts: list[UpsertCounts] = []
    errors: list[BaseException] = []

    def write(engine: sa.Engine, items: list[ContentItem]) -> None:
        barrier.wait()
        try:
            for _ in range(3):
                with engine.begin() as conn:
                    counts.append(_upsert_items(conn, items))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(engine, items))
        for engine, items in zip(engines, payloads, strict=True)
    ]
    _run_all(threads, engines)
    assert errors == []
    total = sum(counts, UpsertCounts())
    assert total == UpsertCounts(inserted=300, updated=0, unchanged=300 * 5)


# --- integrations ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["acme", "a", "acme-fb_2", "0abc", "a" * 64])
def test_valid_integration_ids(value: str) -> None:
    assert validate_integration_id(value) == value


@pytest.mark.parametrize("value", ["Acme", "a|b", "a,b", "a b", "", "-abc", "_abc", "a" * 65])
def test_invalid_integration_ids_say_what_is_allowed(value: str) -> None:
    with pytest.raises(ValueError, match="lowercase") as info:
        validate_integration_id(value)
    assert "partition key" in str(info.value)


@pytest.mark.parametrize("name", ["ACME_FB_TOKEN", "_X", "T1"])
def test_valid_credential_env(name: str) -> None:
    assert validate_credential_env(name) == name


def test_credential_env_refuses_a_token_without_echoing_it() -> None:
    token = "EAAGm0PX4ZCpsBAKZAZCXqwertyuiopasdfghjklzxcvbnm1234567890"
    with pytest.raises(ValueError, match="NAME of the environment variable") as info:
        validate_credential_env(token)
    assert token not in str(info.value)
    assert token[:20] not in str(info.value)
    uppercase_token = "A" * 200
    with pytest.raises(ValueError) as info:
        validate_credential_env(uppercase_token)
    assert uppercase_token[:41] not in str(info.value)


@pytest.mark.parametrize("name", ["acme_token", "1TOKEN", "MY-TOKEN", "", "A B"])
def test_credential_env_refuses_non_names_and_shows_short_ones(name: str) -> None:
    with pytest.raises(ValueError, match="NAME of the environment variable") as info:
        validate_credential_env(name)
    assert repr(name) in str(info.value)


def _account_of(integration_id: str) -> str:
    """A numeric page id of its own for each test integration id (one account, one id)."""
    return str(int(hashlib.sha256(integration_id.encode()).hexdigest()[:15], 16) + 1)


def _add(conn: sa.Connection, integration_id: str = IID, **changes: Any) -> Any:
    values = {
        "external_account_id": _account_of(integration_id),
        "display_name": "Acme Page",
        **changes,
    }
    return add_integration(conn, **acme_integration(integration_id=integration_id, **values))


def test_add_get_list_integrations(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        added = _add(conn, "zeta", now=T0)
        _add(conn, "alpha", now=T0 + dt.timedelta(minutes=1))
        _add(conn, "beta", now=T0)
    with engine.connect() as conn:
        assert get_integration(conn, "zeta") == added
        assert get_integration(conn, "missing") is None
        listed = list_integrations(conn)
    assert [i.integration_id for i in listed] == ["beta", "zeta", "alpha"]
    assert added.status == "active"
    assert added.status_reason is None
    assert listed[1].created_at == T0
    assert listed[1].created_at.utcoffset() == dt.timedelta(0)


def test_add_integration_refuses_duplicates_and_bad_values(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _add(conn)
        with pytest.raises(IntegrationExistsError):
            _add(conn)
        with pytest.raises(ValueError, match="platform"):
            _add(conn, "other", platform="myspace")
        with pytest.raises(ValueError, match="lowercase"):
            _add(conn, "Other")
        # The transaction is still usable after the refusals (no aborted PG transaction).
        assert [i.integration_id for i in list_integrations(conn)] == [IID]


def test_upsert_integration_is_idempotent(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        first = upsert_integration(conn, **acme_integration(now=T0))
        set_integration_status(conn, IID, "paused", "holiday", T0)
    later = T0 + dt.timedelta(days=1)
    with engine.begin() as conn:
        same = upsert_integration(conn, **acme_integration(now=later))
        renamed = upsert_integration(conn, **acme_integration(display_name="Acme Inc", now=later))
        with pytest.raises(IntegrationExistsError, match="organization"):
            upsert_integration(conn, **acme_integration(organization_id="org-2", now=later))
        assert len(list_integrations(conn)) == 1
    assert same.updated_at == T0
    assert same.status == "paused"
    assert (renamed.display_name, renamed.updated_at, renamed.created_at) == (
        "Acme Inc",
        later,
        first.created_at,
    )


def test_status_changes_and_removal(engine: sa.Engine) -> None:
    later = T0 + dt.timedelta(hours=1)
    with engine.begin() as conn:
        _add(conn, "one")
        _add(conn, "two")
        changed = set_integration_status(conn, "one", "needs_reauth", "token expired", later)
        assert (changed.status, changed.status_reason, changed.updated_at) == (
            "needs_reauth",
            "token expired",
            later,
        )
        assert [i.integration_id for i in list_integrations(conn, ["active"])] == ["two"]
        assert [i.integration_id for i in list_integrations(conn, {"needs_reauth"})] == ["one"]
        assert list_integrations(conn, []) == []
        with pytest.raises(ValueError, match="status"):
            set_integration_status(conn, "one", "deleted", None, later)
        with pytest.raises(UnknownIntegrationError):
            set_integration_status(conn, "nope", "paused", None, later)
        back = set_integration_status(conn, "one", "active", None, later)
        assert (back.status, back.status_reason) == ("active", None)
        remove_integration(conn, "two")
        with pytest.raises(UnknownIntegrationError):
            remove_integration(conn, "two")
        assert [i.integration_id for i in list_integrations(conn)] == ["one"]


# --- ledger ----------------------------------------------------------------------------------


def _fail(conn: sa.Connection, partition_key: str, when: dt.datetime, **changes: Any) -> None:
    values: dict[str, Any] = {
        "organization_id": ORG,
        "integration_id": IID,
        "asset": "content_metrics",
        "partition_key": partition_key,
        "error_class": ErrorClass.TRANSIENT,
        "platform_code": "613",
        "message": "rate limited",
        "run_id": "run-1",
        "occurred_at": when,
    }
    values.update(changes)
    record_failure(conn, **values)


def test_failures_are_recorded_and_resolved(engine: sa.Engine) -> None:
    key = f"2026-03-01|{IID}"
    with engine.begin() as conn:
        _fail(conn, key, T0)
        _fail(conn, key, T0 + dt.timedelta(minutes=5), error_class="permanent_credential")
        _fail(conn, f"2026-03-02|{IID}", T0 - dt.timedelta(minutes=5))
        _fail(conn, "2026-03-01|other", T0, integration_id="other", message="x" * 10_000)
        with pytest.raises(ValueError):
            _fail(conn, key, T0, error_class="oops")
    with engine.begin() as conn:
        opened = open_failures(conn, IID)
        assert [(f.partition_key, f.error_class) for f in opened] == [
            (f"2026-03-02|{IID}", "transient"),
            (key, "transient"),
            (key, "permanent_credential"),
        ]
        assert opened[1].occurred_at == T0
        assert opened[1].platform_code == "613"
        everything = open_failures(conn)
        assert len(everything) == 4
        assert max(len(f.message) for f in everything) == 4_000
        resolved = resolve_failures(
            conn, integration_id=IID, asset="content_metrics", partition_key=key, resolved_at=T0
        )
        assert resolved == 2
        again = resolve_failures(
            conn, integration_id=IID, asset="content_metrics", partition_key=key, resolved_at=T0
        )
        assert again == 0
        assert [f.partition_key for f in open_failures(conn, IID)] == [f"2026-03-02|{IID}"]


def test_partition_loads(engine: sa.Engine) -> None:
    def load(day: dt.date, rows: int, run_id: str) -> None:
        with engine.begin() as conn:
            record_partition_load(
                conn,
                integration_id=IID,
                asset="content_items",
                partition_date=day,
                loaded_at=T0,
                run_id=run_id,
                rows_written=rows,
                details={"api_calls": rows},
            )

    load(DAY, 3, "run-1")
    load(DAY, 5, "run-2")
    load(DAY + dt.timedelta(days=2), 0, "run-3")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.partition_loads)).all()
    assert {row.partition_date for row in rows} == {DAY, DAY + dt.timedelta(days=2)}
    first = next(row for row in rows if row.partition_date == DAY)
    assert (first.rows_written, first.run_id, first.details) == (5, "run-2", {"api_calls": 5})
    assert len(rows) == 2
