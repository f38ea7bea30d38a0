"""Engine configuration: URL handling, defaults and SQLite connection settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics_pipeline.warehouse import WarehouseConfigError, default_warehouse_url, make_engine


def test_default_url_is_an_absolute_sqlite_file_in_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ANALYTICS_WAREHOUSE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANALYTICS_DATA_DIR", "relative/data")
    url = sa.make_url(default_warehouse_url())
    expected = tmp_path / "relative" / "data" / "warehouse.sqlite"
    assert url.get_backend_name() == "sqlite"
    assert Path(url.database or "") == expected.resolve()
    assert expected.parent.is_dir()


def test_default_data_dir_is_dot_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ANALYTICS_WAREHOUSE_URL", raising=False)
    monkeypatch.delenv("ANALYTICS_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    url = sa.make_url(default_warehouse_url())
    assert Path(url.database or "") == (tmp_path / ".data" / "warehouse.sqlite").resolve()


def test_configured_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANALYTICS_WAREHOUSE_URL", "postgresql://u@db.example/analytics")
    assert default_warehouse_url() == "postgresql://u@db.example/analytics"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:pw@db.example:5432/analytics",
        "postgres://u:pw@db.example:5432/analytics",
        "postgresql+psycopg://u:pw@db.example:5432/analytics",
    ],
)
def test_postgres_urls_use_psycopg3(url: str) -> None:
    engine = make_engine(url)  # no connection is made until first use
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.url.database == "analytics"
        assert engine.pool._pre_ping  # type: ignore[attr-defined]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://admin:s3cr3t-pw@db.example/analytics", "Unsupported database 'mysql'"),
        ("postgresql+psycopg2://admin:s3cr3t-pw@db.example/analytics", "driver"),
        ("postgresql://admin:s3cr3t-pw@db.example", "No database name"),
        ("not a url s3cr3t-pw", "could not be parsed"),
        ("", "empty"),
        # a password given as a query parameter is hidden too
        ("postgresql+pg8000://admin@db.example/a?password=s3cr3t-pw", "driver"),
    ],
)
def test_bad_urls_are_explained_without_the_password(url: str, fragment: str) -> None:
    with pytest.raises(WarehouseConfigError, match=fragment) as info:
        make_engine(url)
    message = str(info.value)
    assert "ANALYTICS_WAREHOUSE_URL" in message
    assert "s3cr3t-pw" not in message
    assert info.value.__cause__ is None
    assert isinstance(info.value, ValueError)


def test_missing_sqlite_directory_is_explained(tmp_path: Path) -> None:
    with pytest.raises(WarehouseConfigError, match="does not exist"):
        make_engine(f"sqlite:///{tmp_path}/missing/warehouse.sqlite")


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/wh.sqlite")
    try:
        with engine.connect() as conn:
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            busy = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
            foreign_keys = conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
            in_transaction = conn.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
        assert (journal, busy, foreign_keys) == ("wal", 30_000, 1)
        assert in_transaction  # SQLAlchemy's BEGIN (IMMEDIATE) covers reads as well
    finally:
        engine.dispose()


def test_sqlite_transactions_take_the_write_lock_up_front(tmp_path: Path) -> None:
    """A second writer must wait (here: time out at once), not interleave with a first one."""
    url = f"sqlite:///{tmp_path}/wh.sqlite"
    first, second = make_engine(url), make_engine(url)
    try:
        with first.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
            raw = second.raw_connection()
            try:
                raw.driver_connection.execute("PRAGMA busy_timeout = 0")  # type: ignore[union-attr]
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    raw.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
            finally:
                raw.close()
    finally:
        first.dispose()
        second.dispose()
