"""Building SQLAlchemy engines for the warehouse (SQLite by default, PostgreSQL in production).

Nothing here is cached globally: every caller gets its own engine and disposes of it.

SQLite transactions are started with ``BEGIN IMMEDIATE``: a partition reads the rows it is about
to upsert and then writes them, and with SQLite's default deferred ``BEGIN`` a concurrent writer
committing in between makes the write fail at once with "database is locked" (SQLITE_BUSY_SNAPSHOT
is not retried by ``busy_timeout``). Taking the write lock up front makes concurrent partitions
queue for up to ``busy_timeout`` instead. The cost: every SQLite transaction, reads included,
holds the write lock while it is open, so keep transactions short.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

WAREHOUSE_URL_ENV = "ANALYTICS_WAREHOUSE_URL"
DATA_DIR_ENV = "ANALYTICS_DATA_DIR"
SQLITE_BUSY_TIMEOUT_MS = 30_000

_EXAMPLES = "e.g. postgresql://user@db.example.com:5432/analytics or sqlite:////abs/path/wh.sqlite"
_POSTGRES_DRIVERS = {None, "psycopg"}
_SQLITE_DRIVERS = {None, "pysqlite"}


class WarehouseConfigError(ValueError):
    """The warehouse URL is malformed or names a database this project does not support."""


def default_warehouse_url() -> str:
    """`ANALYTICS_WAREHOUSE_URL` if set, else an absolute SQLite file in the data directory.

    The data directory is `ANALYTICS_DATA_DIR` or `./.data`; it is created if missing.
    """
    configured = os.environ.get(WAREHOUSE_URL_ENV, "").strip()
    if configured:
        return configured
    data_dir = Path(os.environ.get(DATA_DIR_ENV, "").strip() or ".data").expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return URL.create("sqlite", database=str(data_dir / "warehouse.sqlite")).render_as_string()


def safe_url_text(url: URL) -> str:
    """The URL with its password (also one passed as a query parameter) replaced by ***."""
    if "password" in url.query:
        url = url.update_query_dict({"password": "***"})
    return url.render_as_string(hide_password=True)


def _config_error(problem: str) -> WarehouseConfigError:
    return WarehouseConfigError(
        f"{problem}. Set {WAREHOUSE_URL_ENV} to a PostgreSQL or SQLite URL ({_EXAMPLES}), "
        f"or leave it unset to use a SQLite file under ${DATA_DIR_ENV} (default ./.data)."
    )


def normalize_warehouse_url(url: str | URL) -> URL:
    """Parse and validate a warehouse URL; PostgreSQL URLs are pinned to psycopg 3.

    Raises WarehouseConfigError (never echoing a password) when the URL cannot be used.
    """
    if isinstance(url, URL):
        parsed = url
    else:
        if not url or not url.strip():
            raise _config_error("The warehouse URL is empty")
        try:
            parsed = make_url(url.strip())
        except (ArgumentError, ValueError):
            # The text may hold a password: do not echo it, nor chain the parser's error.
            raise _config_error("The warehouse URL could not be parsed") from None
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name() if "+" in parsed.drivername else None
    if backend in ("postgresql", "postgres"):
        if driver not in _POSTGRES_DRIVERS:
            raise _config_error(
                f"Unsupported PostgreSQL driver {driver!r} in {safe_url_text(parsed)}: "
                "use postgresql:// or postgresql+psycopg:// (psycopg 3)"
            )
        if not parsed.database:
            raise _config_error(f"No database name in {safe_url_text(parsed)}")
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in _SQLITE_DRIVERS:
            raise _config_error(
                f"Unsupported SQLite driver {driver!r} in {safe_url_text(parsed)}: use sqlite:///"
            )
        _check_sqlite_path(parsed)
        return parsed
    raise _config_error(
        f"Unsupported database {backend!r} in {safe_url_text(parsed)}: "
        "only postgresql and sqlite are supported"
    )


def _check_sqlite_path(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    parent = Path(database).expanduser().parent
    if not parent.is_dir():
        raise _config_error(
            f"The directory of the SQLite file in {safe_url_text(url)} does not exist ({parent})"
        )


def make_engine(url: str | URL) -> sa.Engine:
    """A new engine for `url` (SQLite or PostgreSQL), configured for the warehouse."""
    parsed = normalize_warehouse_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed)
        _configure_sqlite(engine)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


def _enable_wal(cursor: sqlite3.Cursor) -> None:
    """Switch to WAL. The switch needs an exclusive lock and SQLite reports "database is locked"
    at once (busy_timeout does not cover it) while another connection holds one, e.g. when two
    processes open a brand-new file together: retry within the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _configure_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module: SQLAlchemy's "begin" event
        # below emits BEGIN IMMEDIATE (see the module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_MS)}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
