"""Test helpers: warehouse fixtures' values and schema comparison, platform settings from an
environment mapping, Dagster storage on PostgreSQL, run workers."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline import ingest
from analytics_pipeline.defs.resources import PlatformsResource
from analytics_pipeline.platforms.base import Account, PlatformClient
from analytics_pipeline.warehouse import add_integration, make_engine, migrate, record_failure
from analytics_pipeline.warehouse import tables as t

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
ORG = "org-1"
IID = "acme-fb"


def acme_integration(**changes: Any) -> dict[str, Any]:
    """Keyword arguments of `add_integration`/`upsert_integration` for the `IID` test page."""
    values: dict[str, Any] = {
        "organization_id": ORG,
        "integration_id": IID,
        "platform": "facebook",
        "external_account_id": "1",
        "display_name": "Acme",
        "credential_env": "ACME_FB_TOKEN",
        "now": T0,
    }
    values.update(changes)
    return values


def assert_schema_matches_tables(engine: sa.Engine) -> None:
    """Tables (columns, keys, indexes, CHECK names) and views of the database = tables.py.

    Alembic's bookkeeping table `alembic_version` is not in tables.py and is ignored.
    """
    inspector = sa.inspect(engine)
    expected_tables = {table.name for table in t.metadata.sorted_tables}
    assert set(inspector.get_table_names()) - {"alembic_version"} == expected_tables
    views = {view.name: view for view in t.views_metadata.sorted_tables}
    assert set(inspector.get_view_names()) == set(views)
    for name, view in views.items():
        assert [c["name"] for c in inspector.get_columns(name)] == list(view.c.keys()), name
    for table in t.metadata.sorted_tables:
        checks = {c["name"] for c in inspector.get_check_constraints(table.name)}
        expected_checks = {
            c.name for c in table.constraints if isinstance(c, sa.CheckConstraint) and c.name
        }
        assert checks == expected_checks, table.name
        columns = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name: c.nullable for c in table.columns}, table.name
        uniques = {tuple(u["column_names"]) for u in inspector.get_unique_constraints(table.name)}
        expected_uniques = {
            tuple(c.name for c in constraint.columns)
            for constraint in table.constraints
            if isinstance(constraint, sa.UniqueConstraint)
        }
        assert uniques == expected_uniques, table.name
        indexes = {
            (i["name"], tuple(i["column_names"]))
            for i in inspector.get_indexes(table.name)
            if not i.get("duplicates_constraint")
        }
        expected_indexes = {
            (index.name, tuple(c.name for c in index.columns)) for index in table.indexes
        }
        assert indexes == expected_indexes, table.name
        pk = tuple(inspector.get_pk_constraint(table.name)["constrained_columns"])
        assert pk == tuple(c.name for c in table.primary_key.columns), table.name


def settings_from_env(platform: str, environ: Mapping[str, str]) -> Any:
    """`platform`'s client settings as a deployment with `environ` configures them."""
    return PlatformsResource.from_env(environ).settings_for(platform)


def client_from_env(account: Account, environ: Mapping[str, str]) -> PlatformClient:
    """A client for `account` as a deployment with `environ` creates it."""
    return PlatformsResource.from_env(environ).create_client(account)


def migrate_concurrently(
    engines: Sequence[sa.Engine],
) -> tuple[list[list[str]], list[BaseException]]:
    """`migrate` on every engine at once (one thread each, released together): what each call
    applied, and what any of them raised."""
    barrier = threading.Barrier(len(engines))
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run(engine: sa.Engine) -> None:
        barrier.wait()
        try:
            results.append(migrate(engine))
        except BaseException as exc:  # reported to the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


def record_test_failure(
    conn: sa.Connection, error_class: str, when: dt.datetime, partition_key: str = "k"
) -> None:
    """One `ingestion_failures` row of the `IID` test integration."""
    record_failure(
        conn,
        organization_id=ORG,
        integration_id=IID,
        asset="content_metrics",
        partition_key=partition_key,
        error_class=error_class,
        platform_code="190",
        message=f"{error_class} happened",
        run_id="run-1",
        occurred_at=when,
    )


def track_facebook_pages(
    engine: sa.Engine, pages: Mapping[str, str], credential_env: str, organization_id: str
) -> None:
    """Track each page (integration id -> page id) as a Facebook integration."""
    with engine.begin() as conn:
        for integration_id, page_id in pages.items():
            add_integration(
                conn,
                organization_id=organization_id,
                integration_id=integration_id,
                platform="facebook",
                external_account_id=page_id,
                display_name=integration_id,
                credential_env=credential_env,
                now=dt.datetime.now(dt.UTC),
            )


def wait_for(what: str, probe: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """`probe()`'s first truthy value, polled every `every` s; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def facebook_sandbox_platforms(base_url: str, **overrides: str) -> PlatformsResource:
    """The platforms resource pointed at a sandbox's Graph API, with fast client retries."""
    return PlatformsResource.from_env(
        {
            "ANALYTICS_FACEBOOK_BASE_URL": base_url,
            "ANALYTICS_HTTP_BACKOFF_BASE_S": "0.001",
            "ANALYTICS_HTTP_BACKOFF_MAX_S": "0.01",
            "ANALYTICS_FACEBOOK_USAGE_MAX_PAUSE_S": "0.01",
            **overrides,
        }
    )


def dagster_postgres_config(postgres_url: str) -> tuple[str, dict[str, str]]:
    """deploy/dagster.postgres.yaml for a test database, and the `DAGSTER_PG_*` variables it
    reads. The embedded test server listens on a Unix socket only: its directory goes in as a
    libpq parameter."""
    url = sa.engine.make_url(postgres_url)
    config = (ROOT / "deploy" / "dagster.postgres.yaml").read_text()
    socket_dir = url.query.get("host")
    if url.host is None and isinstance(socket_dir, str):
        config = config.replace(
            "      db_name:\n", f"      params:\n        host: {socket_dir}\n      db_name:\n"
        )
        sockets = sorted(Path(socket_dir).glob(".s.PGSQL.*"))
        host, port = "localhost", sockets[0].name.rsplit(".", 1)[-1] if sockets else "5432"
    else:
        host, port = url.host or "127.0.0.1", str(url.port or 5432)
    env = {
        "DAGSTER_PG_HOST": host,
        "DAGSTER_PG_PORT": port,
        "DAGSTER_PG_USER": url.username or "postgres",
        "DAGSTER_PG_PASSWORD": url.password or "",
        "DAGSTER_PG_DB": url.database or "postgres",
    }
    return config, env


_STARTED_PROCESS = re.compile(r"Started process for run \(pid: (\d+)\)")


def run_worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of a run's worker process, once its code server logged starting it."""
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        found = _STARTED_PROCESS.search(entry.message or "")
        if found:
            return int(found.group(1))
    return None


def kill_process_tree(pid: int) -> list[int]:
    """SIGKILL a process and every descendant (a run worker and the step processes it forked):
    what a crashed machine or pod does to a run. The pids killed."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)
    return tree


def facebook_warehouse(
    tmp_path: Path,
    monkeypatch: Any,
    sandbox: Any,
    token: tuple[str, str],
    pages: Mapping[str, str],
    run_at: dt.datetime,
    organization_id: str,
) -> tuple[str, sa.Engine]:
    """The in-process ingestion tests' set-up: a clean sandbox, the token (variable, value) in
    the environment, the clock at `run_at`, and a migrated SQLite warehouse tracking `pages`."""
    sandbox.reset()
    token_env, value = token
    monkeypatch.setenv(token_env, value)
    monkeypatch.setattr(ingest, "utc_now", lambda: run_at)
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    engine = make_engine(url)
    migrate(engine)
    track_facebook_pages(engine, pages, token_env, organization_id=organization_id)
    return url, engine
