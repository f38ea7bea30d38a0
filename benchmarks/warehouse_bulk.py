"""The warehouse-only scenario: bulk upserts of synthetic `content_metrics_daily` rows.

Paths measured in one process, one after the other, each on an empty table of its own:
- PostgreSQL (127.0.0.1:5432, db `test`, user `postgres`; a scratch schema created and dropped):
  `upsert_content_metrics` insert path (empty table), then its update path (same keys, every
  row's values changed); reference: psycopg 3 binary COPY (`write_row`) into an empty table
  created `LIKE content_metrics_daily INCLUDING ALL` (same unique key), in one transaction.
  Informative only (no target): the same binary COPY into another such table, but fed like the
  upsert (`ContentMetrics` built per call, rows sorted by key, one transaction per call): an
  upper bound for any writer with the upsert's input and call pattern;
- SQLite (a temp file, the warehouse's own engine settings: WAL, BEGIN IMMEDIATE): the same two
  upsert passes; reference: raw `sqlite3` `executemany` of a plain INSERT in one transaction
  into an empty migrated table.

Rows are grouped like partitions: `rows_per_call` (default 1,000 = one upsert batch) items of one
integration and one day per `upsert_content_metrics` call, one transaction per call. Every timed
path includes building its rows in Python; `generate_rows_per_s` says what that alone costs.

Account metrics (`account_rows`, default 20,000; 0 skips them), on each database after the
content passes, in its own empty `account_metrics_daily`: one `upsert_account_metrics` call (one
row: one integration-day) per transaction, as the pipeline's account partitions write them, over
`ACCOUNT_INTEGRATIONS` integrations x as many days as needed. Passes: `upsert_insert` (with a
followers snapshot), `upsert_update` (every value and the snapshot changed) and
`upsert_rerun_no_snapshot` (a backfill re-run: the same per-day values, no snapshot; unchanged)
and, to show the upsert's own cost without a commit per row (not the pipeline's pattern),
`upsert_update_day_per_transaction` (values changed again, one transaction per day's calls).

    python -m benchmarks.warehouse_bulk --rows 200000 [--rows-per-call 1000] [--account-rows N]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa

import analytics_pipeline
from analytics_pipeline import warehouse as wh
from analytics_pipeline.records import (
    ACCOUNT_METRIC_FIELDS,
    METRIC_FIELDS,
    AccountMetrics,
    ContentMetrics,
    ValueKind,
)
from analytics_pipeline.warehouse.migrations import migrate

PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ORG = "bench-org"
FIRST_DAY = dt.date(2026, 1, 1)
ACCOUNT_ROWS = 20_000
ACCOUNT_INTEGRATIONS = 100
COLUMNS = (
    "organization_id",
    "integration_id",
    "external_content_id",
    "metric_date",
    "value_kind",
    *METRIC_FIELDS,
    "observed_at",
)
PG_TYPES = ["varchar"] * 3 + ["date", "varchar"] + ["int8"] * len(METRIC_FIELDS) + ["timestamptz"]

Progress = Callable[[str], None]


def _groups(rows: int, per_call: int) -> Iterator[tuple[str, dt.date, int, int]]:
    """(integration, day, first item number, item count) of each call, `rows` in total."""
    done, call = 0, 0
    while done < rows:
        count = min(per_call, rows - done)
        integration = f"bench-{call % 100:03d}"
        day = FIRST_DAY + dt.timedelta(days=call // 100)
        yield integration, day, done, count
        done += count
        call += 1


def _values(n: int, bump: int) -> list[int | None]:
    base = (n * 7919 + bump) % 100_000
    return [None if i == 8 else base + i + bump for i in range(len(METRIC_FIELDS))]


def _metrics(first: int, count: int, bump: int) -> list[ContentMetrics]:
    return [
        ContentMetrics(
            f"{ORG}_{n:09d}",
            ValueKind.LIFETIME_SNAPSHOT,
            **dict(zip(METRIC_FIELDS, _values(n, bump), strict=True)),
        )
        for n in range(first, first + count)
    ]


def _tuples(rows: int, per_call: int, observed: dt.datetime) -> Iterator[tuple[Any, ...]]:
    for integration, day, first, count in _groups(rows, per_call):
        for n in range(first, first + count):
            yield (
                ORG,
                integration,
                f"{ORG}_{n:09d}",
                day,
                ValueKind.LIFETIME_SNAPSHOT.value,
                *_values(n, 0),
                observed,
            )


def _upsert_pass(engine: sa.Engine, rows: int, per_call: int, bump: int) -> dict[str, Any]:
    observed = dt.datetime.now(dt.UTC)
    counts = wh.UpsertCounts()
    started = time.perf_counter()
    for integration, day, first, count in _groups(rows, per_call):
        with engine.begin() as conn:
            counts += wh.upsert_content_metrics(
                conn,
                organization_id=ORG,
                integration_id=integration,
                metric_date=day,
                metrics=_metrics(first, count, bump),
                observed_at=observed,
            )
    seconds = time.perf_counter() - started
    return {
        "s": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "inserted": counts.inserted,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
    }


def _account_metrics(n: int, bump: int, snapshot: bool) -> AccountMetrics:
    """Row `n`'s metrics; `bump` changes every value (the snapshot too), None stays None."""
    base = (n * 7919 + bump) % 100_000
    values = [None if i == 5 else base + i + bump for i in range(len(ACCOUNT_METRIC_FIELDS))]
    if not snapshot:
        values[ACCOUNT_METRIC_FIELDS.index("followers_total")] = None
    by_name: dict[str, Any] = dict(zip(ACCOUNT_METRIC_FIELDS, values, strict=True))
    return AccountMetrics(**by_name)


def _account_pass(
    engine: sa.Engine, rows: int, bump: int, snapshot: bool, calls_per_transaction: int = 1
) -> dict[str, Any]:
    """`rows` one-row `upsert_account_metrics` calls, `calls_per_transaction` per transaction
    (the pipeline: 1, one partition per transaction)."""
    observed = dt.datetime.now(dt.UTC)
    counts = wh.UpsertCounts()
    started = time.perf_counter()
    for first in range(0, rows, calls_per_transaction):
        with engine.begin() as conn:
            for n in range(first, min(first + calls_per_transaction, rows)):
                counts += wh.upsert_account_metrics(
                    conn,
                    organization_id=ORG,
                    integration_id=f"bench-{n % ACCOUNT_INTEGRATIONS:03d}",
                    metric_date=FIRST_DAY + dt.timedelta(days=n // ACCOUNT_INTEGRATIONS),
                    metrics=_account_metrics(n, bump, snapshot),
                    observed_at=observed,
                )
    seconds = time.perf_counter() - started
    return {
        "s": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "inserted": counts.inserted,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
    }


def _account_passes(
    engine: sa.Engine, rows: int, name: str, progress: Progress
) -> dict[str, Any] | None:
    if rows <= 0:
        return None
    # path: (bump, with a snapshot, calls per transaction)
    passes = {
        "upsert_insert": (0, True, 1),
        "upsert_update": (1, True, 1),
        "upsert_rerun_no_snapshot": (1, False, 1),
        "upsert_update_day_per_transaction": (2, True, ACCOUNT_INTEGRATIONS),
    }
    result: dict[str, Any] = {"rows": rows, "rows_per_call": 1}
    for path, (bump, snapshot, per_transaction) in passes.items():
        progress(f"{name}: account metrics {path}, {rows} one-row calls")
        result[path] = _account_pass(engine, rows, bump, snapshot, per_transaction)
    return result


def _generate_only(rows: int, per_call: int) -> float:
    started = time.perf_counter()
    for _integration, _day, first, count in _groups(rows, per_call):
        _metrics(first, count, 0)
    return rows / (time.perf_counter() - started)


def _ratios(result: dict[str, Any], reference: float) -> None:
    for path in ("upsert_insert", "upsert_update"):
        result[f"{path}_vs_reference"] = round(result[path]["rows_per_s"] / reference, 3)


# ---------------------------------------------------------------------------------- PostgreSQL


def postgres(
    rows: int, per_call: int, progress: Progress, account_rows: int = ACCOUNT_ROWS
) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(PG_DSN, autocommit=True)
    try:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        engine = wh.make_engine(f"{PG_URL}?options=-csearch_path%3D{schema}")
        try:
            migrate(engine)
            progress(f"postgres: upsert insert path, {rows} rows")
            insert = _upsert_pass(engine, rows, per_call, 0)
            progress(f"postgres: upsert update path, {rows} rows")
            update = _upsert_pass(engine, rows, per_call, 1)
            account = _account_passes(engine, account_rows, "postgres", progress)
        finally:
            engine.dispose()
        progress(f"postgres: binary COPY, {rows} rows")
        copy_rate = _pg_copy(schema, rows, per_call)
        progress(f"postgres: binary COPY per call from ContentMetrics, {rows} rows")
        copy_per_call_rate = _pg_copy_per_call(schema, rows, per_call)
    finally:
        admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.close()
    result: dict[str, Any] = {
        "upsert_insert": insert,
        "upsert_update": update,
        "reference": "binary COPY into an empty table with the same unique key",
        "reference_rows_per_s": round(copy_rate),
    }
    _ratios(result, copy_rate)
    result["informative_copy_per_call"] = {
        "what": "binary COPY fed like the upsert: ContentMetrics, one transaction per call",
        "rows_per_s": round(copy_per_call_rate),
        "vs_reference": round(copy_per_call_rate / copy_rate, 3),
        "upsert_insert_vs_this": round(insert["rows_per_s"] / copy_per_call_rate, 3),
        "upsert_update_vs_this": round(update["rows_per_s"] / copy_per_call_rate, 3),
    }
    result["account_metrics"] = account
    return result


@contextlib.contextmanager
def _copy_table(schema: str, table: str) -> Iterator[tuple[psycopg.Connection, str]]:
    """A connection and the binary COPY statement into a new empty table keyed like the
    warehouse's `content_metrics_daily`."""
    with psycopg.connect(PG_DSN) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(f"CREATE TABLE {table} (LIKE content_metrics_daily INCLUDING ALL)")
        conn.commit()
        yield conn, f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"


def _check_count(conn: psycopg.Connection, table: str, rows: int) -> None:
    copied = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    if copied is None or copied[0] != rows:
        raise RuntimeError(f"COPY into {table} wrote {copied} rows, expected {rows}")


def _pg_copy(schema: str, rows: int, per_call: int) -> float:
    observed = dt.datetime.now(dt.UTC)
    with _copy_table(schema, "copy_target") as (conn, statement):
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types(PG_TYPES)
            for row in _tuples(rows, per_call, observed):
                copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started
        _check_count(conn, "copy_target", rows)
    return rows / seconds


def _pg_copy_per_call(schema: str, rows: int, per_call: int) -> float:
    """The reference's COPY, with the upsert passes' input and transactions: per call, the
    `ContentMetrics` are built, turned into rows sorted by key, copied and committed."""
    observed = dt.datetime.now(dt.UTC)
    with _copy_table(schema, "copy_per_call") as (conn, statement):
        started = time.perf_counter()
        for integration, day, first, count in _groups(rows, per_call):
            metrics = sorted(_metrics(first, count, 0), key=lambda m: m.external_content_id)
            with conn.cursor() as cur, cur.copy(statement) as copy:
                copy.set_types(PG_TYPES)
                for m in metrics:
                    copy.write_row(
                        (
                            ORG,
                            integration,
                            m.external_content_id,
                            day,
                            m.value_kind.value,
                            *(getattr(m, name) for name in METRIC_FIELDS),
                            observed,
                        )
                    )
            conn.commit()
        seconds = time.perf_counter() - started
        _check_count(conn, "copy_per_call", rows)
    return rows / seconds


# ---------------------------------------------------------------------------------- SQLite


def sqlite(
    rows: int, per_call: int, progress: Progress, account_rows: int = ACCOUNT_ROWS
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wh-bench-") as tmp:
        engine = wh.make_engine(f"sqlite:///{Path(tmp) / 'upsert.sqlite'}")
        try:
            migrate(engine)
            progress(f"sqlite: upsert insert path, {rows} rows")
            insert = _upsert_pass(engine, rows, per_call, 0)
            progress(f"sqlite: upsert update path, {rows} rows")
            update = _upsert_pass(engine, rows, per_call, 1)
            account = _account_passes(engine, account_rows, "sqlite", progress)
        finally:
            engine.dispose()
        progress(f"sqlite: raw executemany, {rows} rows")
        raw_rate = _sqlite_raw(Path(tmp) / "raw.sqlite", rows, per_call)
    result: dict[str, Any] = {
        "upsert_insert": insert,
        "upsert_update": update,
        "reference": "raw sqlite3 executemany, plain INSERT, one transaction, empty table",
        "reference_rows_per_s": round(raw_rate),
    }
    _ratios(result, raw_rate)
    result["account_metrics"] = account
    return result


def _sqlite_raw(path: Path, rows: int, per_call: int) -> float:
    engine = wh.make_engine(f"sqlite:///{path}")
    migrate(engine)  # same table, same key, same WAL journal
    engine.dispose()
    observed = dt.datetime.now(dt.UTC).isoformat(sep=" ")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        placeholders = ", ".join("?" for _ in COLUMNS)
        statement = (
            f"INSERT INTO content_metrics_daily ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        )
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            statement,
            (
                (*row[:3], row[3].isoformat(), *row[4:-1], observed)
                for row in _tuples(rows, per_call, dt.datetime.now(dt.UTC))
            ),
        )
        conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        (count,) = conn.execute("SELECT count(*) FROM content_metrics_daily").fetchone()
    finally:
        conn.close()
    if count != rows:
        raise RuntimeError(f"executemany wrote {count} rows, expected {rows}")
    return rows / seconds


def run(
    rows: int, per_call: int, progress: Progress, account_rows: int = ACCOUNT_ROWS
) -> dict[str, Any]:
    return {
        "rows": rows,
        "rows_per_call": per_call,
        "generate_rows_per_s": round(_generate_only(min(rows, 100_000), per_call)),
        "postgresql": postgres(rows, per_call, progress, account_rows),
        "sqlite": sqlite(rows, per_call, progress, account_rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Warehouse bulk upsert benchmark (one JSON line)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="content_metrics_daily rows")
    parser.add_argument("--rows-per-call", type=int, default=1_000)
    parser.add_argument(
        "--account-rows",
        type=int,
        default=ACCOUNT_ROWS,
        help="account_metrics_daily rows, one call and transaction each (0: skip)",
    )
    args = parser.parse_args(argv)
    if args.rows < 1 or args.rows_per_call < 1 or args.account_rows < 0:
        parser.error("--rows and --rows-per-call must be >= 1, --account-rows >= 0")
    result = run(args.rows, args.rows_per_call, _progress, args.account_rows)
    # Which checkout was measured (PYTHONPATH can point at another one: old vs new).
    result["library"] = str(Path(analytics_pipeline.__file__).resolve().parent)
    print(json.dumps(result), flush=True)
    return 0


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
