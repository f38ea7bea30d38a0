"""The Alembic migrations: adoption of pre-Alembic warehouses, the revisions against the legacy
steps they replace, and autogenerate's comparison with tables.py. Every test runs on SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from analytics_pipeline.records import (
    AccountMetrics,
    ContentFormat,
    ContentItem,
    ContentMetrics,
    ErrorClass,
    ValueKind,
)
from analytics_pipeline.warehouse import (
    add_integration,
    make_engine,
    migrate,
    record_partition_load,
    resolve_failures,
    upsert_account_metrics,
    upsert_content_items,
    upsert_content_metrics,
)
from analytics_pipeline.warehouse import tables as t
from analytics_pipeline.warehouse.migrations import (
    COMPARE_OPTIONS,
    alembic_config,
    known_versions,
    pending_migrations,
)
from analytics_pipeline_tests.helpers import (
    IID,
    ORG,
    T0,
    acme_integration,
    assert_schema_matches_tables,
    migrate_concurrently,
    record_test_failure,
)
from analytics_pipeline_tests.legacy_schema import build_legacy_warehouse

DAY = dt.date(2026, 3, 1)
BOOKKEEPING = ("alembic_version", "schema_migrations")
# Revisions after 0003 (e.g. 0008, the KPI tables) and the tables they add.


def _from(revision: str) -> list[str]:
    """Every known revision from `revision` on (later ones apply too when a test migrates)."""
    versions = known_versions()
    return versions[versions.index(revision) :]


def _current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _autogenerate_diff(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts=COMPARE_OPTIONS), t.metadata)


def _reflect(engine: sa.Engine) -> list[sa.Table]:
    """The warehouse tables as the database has them now (bookkeeping left out)."""
    reflected = sa.MetaData()
    reflected.reflect(engine, only=sorted(_table_names(engine) - set(BOOKKEEPING)))
    return list(reflected.tables.values())


def _rows(engine: sa.Engine, tables: list[sa.Table]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of `tables`, as stored (reflected types, ids included), in a stable order.

    Tables reflected before a migration read the same columns after it, new ones left out."""
    with engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(sa.select(table).order_by(*table.c))]
            for table in tables
        }


def _fill_0001_tables(engine: sa.Engine) -> None:
    """Rows in every table 0001 created, written as 0001-era code wrote them."""
    with engine.begin() as conn:
        add_integration(conn, **acme_integration())
        add_integration(conn, **acme_integration(integration_id="acme-ig", platform="instagram"))
        conn.execute(
            sa.insert(t.content_items),
            [
                {
                    "organization_id": ORG,
                    "integration_id": IID,
                    "platform": "facebook",
                    "external_content_id": f"p{n}",
                    "format": "POST",
                    "caption": f"caption {n}",
                    "hashtags": ["a", str(n)],
                    "permalink": None,
                    "published_at": T0,
                    "first_seen_at": T0,
                    "updated_at": T0,
                }
                for n in range(3)
            ],
        )
        upsert_content_metrics(
            conn,
            organization_id=ORG,
            integration_id=IID,
            metric_date=DAY,
            metrics=[ContentMetrics("p0", ValueKind.LIFETIME_SNAPSHOT, likes=3, views=0)],
            observed_at=T0,
        )
        for hours, error_class in enumerate((ErrorClass.TRANSIENT, ErrorClass.INVALID_RESPONSE)):
            record_test_failure(conn, error_class, T0 + dt.timedelta(hours=hours))
        resolve_failures(
            conn, integration_id=IID, asset="content_metrics", partition_key="k0", resolved_at=T0
        )
        record_partition_load(
            conn,
            integration_id=IID,
            asset="content_metrics",
            partition_date=DAY,
            loaded_at=T0,
            run_id="run-1",
            rows_written=1,
            details={"items": 3},
        )


def _fill_0002_additions(engine: sa.Engine) -> None:
    """Rows using what 0002 added: reference_type, 'permanent_config', account metrics."""
    with engine.begin() as conn:
        upsert_content_items(
            conn,
            organization_id=ORG,
            integration_id=IID,
            platform="facebook",
            items=[
                ContentItem("q1", ContentFormat.TEXT, T0, caption="quoted", reference_type="quote")
            ],
            now=T0,
        )
        record_test_failure(conn, ErrorClass.PERMANENT_CONFIG, T0 + dt.timedelta(hours=5))
        upsert_account_metrics(
            conn,
            organization_id=ORG,
            integration_id=IID,
            metric_date=DAY,
            metrics=AccountMetrics(followers_total=100, reach=0),
            observed_at=T0,
        )


# Tables created by revisions later than 0002 (absent from a legacy warehouse).
TABLES_AFTER_0002 = {
    "integration_credentials",
    "content_performance_daily",
    "account_kpis_daily",
    "kpi_rollups",
    "social_media_report",
    "platform_slots",
}


def _after(revision: str) -> list[str]:
    """The revisions after `revision`, in order (what migrating from it applies)."""
    versions = known_versions()
    return versions[versions.index(revision) + 1 :]


def _assert_adopted_at_head(engine: sa.Engine) -> None:
    assert _current_revision(engine) == known_versions()[-1]
    assert pending_migrations(engine) == []
    assert "schema_migrations" not in _table_names(engine)
    assert_schema_matches_tables(engine)
    assert _autogenerate_diff(engine) == []


# --- adopting a warehouse built before Alembic --------------------------------------------------


def test_a_legacy_0002_warehouse_is_adopted_keeping_every_row(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    try:
        build_legacy_warehouse(engine, through="0002_accounts_and_semantics")
        _fill_0001_tables(engine)
        _fill_0002_additions(engine)
        tables = _reflect(engine)
        before = _rows(engine, tables)
        legacy = {table.name for table in t.metadata.sorted_tables} - TABLES_AFTER_0002
        assert set(before) == legacy
        assert all(before.values()), "a table is empty"
        assert pending_migrations(engine) == _from("0003")

        assert migrate(engine) == _from("0003")  # 0001 and 0002 are stamped, not run again

        assert _rows(engine, tables) == before  # every row, ids included
        _assert_adopted_at_head(engine)
        assert migrate(engine) == []
        with engine.begin() as conn:  # ids go on after the adopted ones
            record_test_failure(conn, ErrorClass.TRANSIENT, T0 + dt.timedelta(hours=9))
            ids = list(conn.scalars(sa.select(t.ingestion_failures.c.id)))
        assert ids[-1] > max(ids[:-1])
    finally:
        engine.dispose()


def test_a_legacy_0001_warehouse_is_adopted_then_upgraded(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    try:
        build_legacy_warehouse(engine, through="0001_initial")
        _fill_0001_tables(engine)
        tables = _reflect(engine)
        before = _rows(engine, tables)
        assert len(before) == 5 and all(before.values()), "a table is empty"
        assert pending_migrations(engine) == _from("0002")

        assert migrate(engine) == _from("0002")

        assert _rows(engine, tables) == before
        with engine.connect() as conn:
            reference_types = set(conn.scalars(sa.select(t.content_items.c.reference_type)))
        assert reference_types == {None}
        _assert_adopted_at_head(engine)
        _fill_0002_additions(engine)  # what 0002 allows now works
    finally:
        engine.dispose()


def test_a_legacy_warehouse_migrated_by_two_processes_at_once_is_adopted_once(
    warehouse_url: str,
) -> None:
    """Two engines (two connections, as two processes have) adopt and upgrade it together."""
    setup = make_engine(warehouse_url)
    build_legacy_warehouse(setup, through="0001_initial")
    _fill_0001_tables(setup)
    tables = _reflect(setup)
    before = _rows(setup, tables)
    setup.dispose()
    engines = [make_engine(warehouse_url) for _ in range(2)]
    results, errors = migrate_concurrently(engines)
    try:
        assert errors == []
        assert sorted(results) == [[], _from("0002")]
        assert _rows(engines[0], tables) == before
        _assert_adopted_at_head(engines[0])
    finally:
        for engine in engines:
            engine.dispose()


# --- one transaction -----------------------------------------------------------------------------


def test_a_failed_migration_leaves_the_database_as_it_was(warehouse_url: str) -> None:
    """One transaction runs every revision: 0002 failing at its third change (a table in the
    way) rolls back the two before it (the SQLite table rebuild, the added column) too."""
    engine = make_engine(warehouse_url)
    try:
        assert migrate(engine, target="0001") == ["0001"]
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE account_metrics_daily (x INTEGER)")
        before = _ddl(engine)
        with pytest.raises(sa.exc.DBAPIError, match="account_metrics_daily"):
            migrate(engine)
        assert _ddl(engine) == before
        assert _current_revision(engine) == "0001"
    finally:
        engine.dispose()


# --- the revisions against the legacy steps -----------------------------------------------------


def _ddl(engine: sa.Engine) -> list[tuple[Any, ...]]:
    """The schema as the database itself describes it (bookkeeping tables left out)."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(
                "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
            )
            # Batch mode's last step, ALTER TABLE _alembic_tmp_x RENAME TO x, makes SQLite store
            # the new name quoted: CREATE TABLE "x" (...). The same table either way.
            return [
                (
                    kind,
                    name,
                    table,
                    (sql or "").replace(f'CREATE TABLE "{name}"', f"CREATE TABLE {name}"),
                )
                for kind, name, table, sql in rows
                if table not in BOOKKEEPING
            ]
        queries = (
            "SELECT table_name, column_name, ordinal_position, data_type, "
            "character_maximum_length, is_nullable, column_default FROM information_schema.columns"
            " WHERE table_schema = current_schema() ORDER BY 1, 3",
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2",
            "SELECT tablename, indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = current_schema() ORDER BY 1, 2",
            "SELECT viewname, viewname, definition FROM pg_views"
            " WHERE schemaname = current_schema() ORDER BY 1",
            "SELECT sequence_name, sequence_name, data_type, start_value, increment"
            " FROM information_schema.sequences WHERE sequence_schema = current_schema()",
        )
        return [
            tuple(row)
            for query in queries
            for row in conn.exec_driver_sql(query)
            if row[0] not in BOOKKEEPING
        ]


def _drop_everything(engine: sa.Engine) -> None:
    quote = engine.dialect.identifier_preparer.quote
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        for view in inspector.get_view_names():
            conn.exec_driver_sql(f"DROP VIEW {quote(view)}")
        for table in inspector.get_table_names():
            conn.exec_driver_sql(f"DROP TABLE {quote(table)}")
    assert _table_names(engine) == set()


@pytest.mark.parametrize(
    ("legacy_step", "revision"),
    [("0001_initial", "0001"), ("0002_accounts_and_semantics", "0002")],
)
def test_each_revision_builds_what_its_legacy_step_built(
    warehouse_url: str, legacy_step: str, revision: str
) -> None:
    """Stamping a legacy warehouse at a revision is only right if the two schemas are equal:
    tables, column types and order, defaults, constraints, indexes, the view, sequences."""
    engine = make_engine(warehouse_url)
    try:
        build_legacy_warehouse(engine, through=legacy_step)
        legacy = _ddl(engine)
        _drop_everything(engine)
        versions = known_versions()
        assert migrate(engine, target=revision) == versions[: versions.index(revision) + 1]
        assert _ddl(engine) == legacy
        assert len(legacy) > 10
    finally:
        engine.dispose()


# --- autogenerate's comparison with tables.py ---------------------------------------------------


def test_autogenerate_finds_no_difference_after_migrate(engine: sa.Engine) -> None:
    assert _autogenerate_diff(engine) == []


def test_autogenerate_reports_a_wrong_timestamp_or_json_type(engine: sa.Engine) -> None:
    """The empty comparison above means something for the `UTCDateTime` decorator and the
    JSON/JSONB variant: a plain timestamp (PostgreSQL: no time zone; SQLite: text) or a plain
    JSON (PostgreSQL: json, not jsonb; SQLite: text) column is reported."""
    postgres = engine.dialect.name == "postgresql"
    wrong: dict[str, sa.types.TypeEngine[Any]] = {
        "loaded_at": sa.DateTime(timezone=False) if postgres else sa.Text(),
        "details": sa.JSON() if postgres else sa.Text(),
    }
    columns = t.partition_loads.c
    with engine.begin() as conn:
        t.partition_loads.drop(conn)
        sa.Table(
            t.partition_loads.name,
            sa.MetaData(),
            *(sa.Column(c.name, wrong.get(c.name, c.type), nullable=c.nullable) for c in columns),
        ).create(conn)
    changed = {
        (diff[0][2], diff[0][3])
        for diff in _autogenerate_diff(engine)
        if isinstance(diff, list) and diff[0][0] == "modify_type"
    }
    assert changed == {("partition_loads", "loaded_at"), ("partition_loads", "details")}


def test_a_drafted_revision_is_empty_after_migrate(engine: sa.Engine, tmp_path: Path) -> None:
    """The module docstring's way to draft a revision works (env.py, script.py.mako) and, on a
    migrated database, proposes nothing. Written to tmp_path, not to the package."""
    drafts: list[Any] = []
    with engine.begin() as conn:
        config = alembic_config(conn)
        versions = Path(config.get_main_option("script_location", "")) / "versions"
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", f"{versions}{os.pathsep}{tmp_path}")
        command.revision(
            config,
            "nothing",
            rev_id="9999",
            autogenerate=True,
            version_path=str(tmp_path),
            process_revision_directives=lambda _context, _revision, directives: drafts.extend(
                directives
            ),
        )
    (draft,) = drafts
    assert draft.upgrade_ops.is_empty()
    text = (tmp_path / "9999_nothing.py").read_text()
    compile(text, "9999_nothing.py", "exec")
    assert f"down_revision: str | Sequence[str] | None = {known_versions()[-1]!r}" in text


# --- a database this code does not know ---------------------------------------------------------


def test_a_database_at_an_unknown_revision_is_left_alone(engine: sa.Engine) -> None:
    """A newer release migrated it: this code neither fails nor touches it."""
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    assert migrate(engine) == []
    assert pending_migrations(engine) == []
    assert _current_revision(engine) == "9999"
