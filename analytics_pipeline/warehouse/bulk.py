"""Bulk upserts that skip identical rows and count exactly, without SQLAlchemy's per-row cost.

The caller gives rows already de-duplicated and sorted by key, as tuples, plus the values shared
by every row of the call (organization, integration, day, timestamps): those are sent once, not
once per row. Everything runs in the caller's transaction; nothing commits.

PostgreSQL: one statement per batch of up to `PG_BATCH_SIZE` rows. Each varying column travels as
ONE array parameter: an integer column whose values are all exactly int or None as the text of an
array literal (``{1, NULL, -3}``, built in C by ``repr``; psycopg's binary list dumper makes Python
calls per element and costs more than twice as much); any other column, or an integer one holding
another type (an int subclass), as a binary array dumped by psycopg. ``unnest(...) WITH ORDINALITY
... ORDER BY`` turns them back into rows in the caller's (key) order, so concurrent writers lock
rows in the same order and cannot deadlock. ``NOT EXISTS`` first drops the rows identical to what
is stored (re-runs are the common case and then write and lock nothing); ``ON CONFLICT DO UPDATE
... WHERE <a value differs>`` keeps the result right when a concurrent writer changed a row in
between. ``xmax = 0`` on the returned rows tells an insert (a fresh row version) from an update,
and the statement returns only the two counts. The SQL text is the same for every call, so psycopg
prepares it on the server once a connection has run it `prepare_threshold` (5) times.

SQLite: the batch's stored rows are read first (one indexed SELECT of the key and the compared
columns, as stored: no conversion back to Python types) and rows identical to them are skipped;
the rest go through ``executemany`` of a prepared ``INSERT ... ON CONFLICT DO UPDATE ... WHERE
<a value differs>`` (plain tuples, no per-row SQLAlchemy processing), whose rowcount is the rows
really written. SQLite transactions take the write lock up front (BEGIN IMMEDIATE, see
engine.py), so that read cannot be stale and inserted = written rows whose key was absent.

Both go through `Connection.exec_driver_sql` (no SQL compilation per call), so SQLAlchemy's
cursor events, logging and exception wrapping still apply.

SQL text is built once per (table, column set) from the Table's columns and types, quoted by the
dialect; values only ever travel as parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

# Rows per statement. PostgreSQL: arrays of 50,000 values are a few MB and amortize the
# round-trip; SQLite: bounds the IN list of the existing-keys read (limit 32,766 variables).
PG_BATCH_SIZE = 50_000
SQLITE_BATCH_SIZE = 10_000


@dataclass(frozen=True)
class UpsertCounts:
    """What one upsert did: rows inserted, updated (a value changed), or left unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        if not isinstance(other, UpsertCounts):
            return NotImplemented
        return UpsertCounts(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )

    @property
    def written(self) -> int:
        return self.inserted + self.updated

    @property
    def total(self) -> int:
        return self.inserted + self.updated + self.unchanged


@dataclass(frozen=True)
class UpsertSpec:
    """How rows of `table` are upserted.

    `compared`: columns whose change makes an update (and which the update sets); `touched`: set
    by an update but never compared (e.g. updated_at); any other non-key column is written on
    insert only (e.g. first_seen_at).
    """

    table: sa.Table
    key: tuple[str, ...]
    compared: tuple[str, ...]
    touched: tuple[str, ...]


def bulk_upsert(
    conn: sa.Connection,
    spec: UpsertSpec,
    *,
    shared: Mapping[str, Any],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> UpsertCounts:
    """Upsert `rows` (tuples in `columns` order, unique and sorted by key) with the `shared`
    values in every row; identical rows are not written. Exactly one key column must vary."""
    if not rows:
        return UpsertCounts()
    names, cols = tuple(shared), tuple(columns)
    _varying_key(spec, names)  # both paths rely on it (SQLite reads existing keys by it)
    if conn.dialect.name == "postgresql":
        return _postgres(conn, spec, names, cols, shared, rows)
    if conn.dialect.name == "sqlite":
        return _sqlite(conn, spec, names, cols, shared, rows)
    raise NotImplementedError(f"unsupported dialect {conn.dialect.name!r}")


# --- shared helpers ----------------------------------------------------------------------------


def _processors(
    conn: sa.Connection, table: sa.Table, names: Sequence[str]
) -> list[Callable[[Any], Any] | None]:
    """The dialect's bind processors (what SQLAlchemy would do to each value) of `names`."""
    dialect = conn.dialect
    return [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]


def _processed_shared(
    conn: sa.Connection, table: sa.Table, names: Sequence[str], shared: Mapping[str, Any]
) -> list[Any]:
    return [
        value if process is None else process(value)
        for process, value in zip(
            _processors(conn, table, names), (shared[name] for name in names), strict=True
        )
    ]


def _processed_columns(
    conn: sa.Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> list[list[Any]]:
    """The rows transposed to one list per column, bind-processed where the type needs it."""
    result: list[list[Any]] = []
    transposed = zip(*rows, strict=True)  # every row must have len(columns) values
    for values, process in zip(transposed, _processors(conn, table, columns), strict=True):
        if process is None:
            result.append(list(values))
        else:
            result.append([process(value) for value in values])
    return result


def _varying_key(spec: UpsertSpec, shared: Sequence[str]) -> str:
    varying = [name for name in spec.key if name not in shared]
    if len(varying) != 1:
        raise ValueError(f"exactly one key column must vary per row, got {varying}")
    return varying[0]


def _batches(rows: Sequence[Sequence[Any]], size: int) -> list[Sequence[Sequence[Any]]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def _on_conflict(spec: UpsertSpec, quote: Callable[[str], str], distinct: str) -> str:
    """``ON CONFLICT (key) DO UPDATE SET ... WHERE <a compared value differs>`` (both dialects)."""
    table = quote(spec.table.name)
    assignments = ", ".join(
        f"{quote(name)} = excluded.{quote(name)}" for name in (*spec.compared, *spec.touched)
    )
    differs = " OR ".join(
        f"{table}.{quote(name)} {distinct} excluded.{quote(name)}" for name in spec.compared
    )
    key = ", ".join(quote(name) for name in spec.key)
    return f"ON CONFLICT ({key}) DO UPDATE SET {assignments} WHERE {differs}"


# --- PostgreSQL --------------------------------------------------------------------------------


def _postgres(
    conn: sa.Connection,
    spec: UpsertSpec,
    names: tuple[str, ...],
    cols: tuple[str, ...],
    shared: Mapping[str, Any],
    rows: Sequence[Sequence[Any]],
) -> UpsertCounts:
    statement = _postgres_statement(spec, conn.dialect, names, cols)
    integers = _postgres_integer_columns(spec, conn.dialect, cols)
    shared_values = _processed_shared(conn, spec.table, names, shared)
    inserted = updated = 0
    for batch in _batches(rows, PG_BATCH_SIZE):
        arrays: list[Any] = _processed_columns(conn, spec.table, cols, batch)
        for index in integers:
            arrays[index] = _integer_array_literal(arrays[index])
        result = conn.exec_driver_sql(statement, _postgres_parameters(shared_values, arrays))
        batch_inserted, batch_written = result.one()
        inserted += batch_inserted
        updated += batch_written - batch_inserted
    return UpsertCounts(
        inserted=inserted, updated=updated, unchanged=len(rows) - inserted - updated
    )


_PLAIN_INTEGER_TYPES = frozenset((int, type(None)))


def _integer_array_literal(values: list[Any]) -> str | list[Any]:
    """`values` as the text of an SQL integer array, e.g. ``{1, NULL, -3}``, when they are all
    exactly int or None; else the list itself (psycopg's own, slower, array dumping).

    ``repr`` of a list of plain ints and Nones is built in C and only holds digits, ``-``,
    ``, `` and ``None``; the server's array parser ignores the spaces.
    """
    if not _PLAIN_INTEGER_TYPES.issuperset(map(type, values)):
        return values
    return "{" + repr(values)[1:-1].replace("None", "NULL") + "}"


@functools.lru_cache(maxsize=64)
def _postgres_integer_columns(
    spec: UpsertSpec, dialect: sa.Dialect, columns: tuple[str, ...]
) -> tuple[int, ...]:
    """Positions in `columns` of the integer columns without a bind processor."""
    return tuple(
        index
        for index, name in enumerate(columns)
        if _is_plain_integer(spec.table.c[name].type, dialect)
    )


def _is_plain_integer(type_: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> bool:
    impl = type_.dialect_impl(dialect)
    return isinstance(impl, sa.Integer) and impl.bind_processor(dialect) is None


@functools.lru_cache(maxsize=64)
def _postgres_statement(
    spec: UpsertSpec, dialect: sa.Dialect, shared: tuple[str, ...], columns: tuple[str, ...]
) -> str:
    quote = dialect.identifier_preparer.quote
    table = quote(spec.table.name)

    def sql_type(name: str) -> str:
        return str(spec.table.c[name].type.compile(dialect=dialect))

    def array(index: int, name: str) -> str:
        # Integer arrays travel as text (see `_integer_array_literal`), the others in binary.
        kind = "s" if _is_plain_integer(spec.table.c[name].type, dialect) else "b"
        return f"%(a{index}){kind}::{sql_type(name)}[]"

    # Shared values are named parameters cast to the column's type (each used twice); each
    # varying column is one typed array parameter, unnested back into rows.
    values = {name: f"%(s{index})b::{sql_type(name)}" for index, name in enumerate(shared)}
    values.update({name: f"u.{quote(name)}" for name in columns})
    arrays = ", ".join(array(index, name) for index, name in enumerate(columns))
    aliases = ", ".join(quote(name) for name in columns)
    insert_columns = [*shared, *columns]
    same = " AND ".join(
        f"t.{quote(name)} = {values[name]}"
        if name in spec.key
        else f"t.{quote(name)} IS NOT DISTINCT FROM {values[name]}"
        for name in (*spec.key, *spec.compared)
    )
    on_conflict = _on_conflict(spec, quote, "IS DISTINCT FROM")
    return (
        f"WITH written AS (INSERT INTO {table} ({', '.join(map(quote, insert_columns))})"
        f" SELECT {', '.join(values[name] for name in insert_columns)}"
        f" FROM unnest({arrays}) WITH ORDINALITY AS u({aliases}, _position)"
        f" WHERE NOT EXISTS (SELECT FROM {table} AS t WHERE {same} OFFSET 0)"
        f" ORDER BY u._position {on_conflict} RETURNING (xmax = 0) AS inserted)"
        " SELECT count(*) FILTER (WHERE inserted), count(*) FROM written"
    )


def _postgres_parameters(shared: Sequence[Any], arrays: Sequence[Any]) -> dict[str, Any]:
    parameters = {f"s{index}": value for index, value in enumerate(shared)}
    parameters.update({f"a{index}": values for index, values in enumerate(arrays)})
    return parameters


# --- SQLite ------------------------------------------------------------------------------------


def _sqlite(
    conn: sa.Connection,
    spec: UpsertSpec,
    names: tuple[str, ...],
    cols: tuple[str, ...],
    shared: Mapping[str, Any],
    rows: Sequence[Sequence[Any]],
) -> UpsertCounts:
    varying = _varying_key(spec, names)
    position = cols.index(varying)
    shared_values = _processed_shared(conn, spec.table, names, shared)
    upsert = _sqlite_upsert(spec, conn.dialect, names, cols)
    scope = [shared_values[names.index(name)] for name in spec.key if name in names]
    compared = [(names + cols).index(name) for name in spec.compared]
    inserted = written = 0
    for batch in _batches(rows, SQLITE_BATCH_SIZE):
        arrays = _processed_columns(conn, spec.table, cols, batch)
        keys = arrays[position]
        select = _sqlite_existing(spec, conn.dialect, names, varying, len(keys))
        existing = {row[0]: tuple(row[1:]) for row in conn.exec_driver_sql(select, (*scope, *keys))}
        full_rows = [(*shared_values, *values) for values in zip(*arrays, strict=True)]
        # Stored values are compared as stored (the bind-processed form), so identical rows
        # are skipped without converting anything back; the SQL's WHERE decides the rest.
        to_write = [
            (key, row)
            for key, row in zip(keys, full_rows, strict=True)
            if existing.get(key) != tuple(row[index] for index in compared)
        ]
        if to_write:
            result = conn.exec_driver_sql(upsert, [row for _key, row in to_write])
            written += result.rowcount
            inserted += sum(1 for key, _row in to_write if key not in existing)
    return UpsertCounts(
        inserted=inserted, updated=written - inserted, unchanged=len(rows) - written
    )


@functools.lru_cache(maxsize=64)
def _sqlite_upsert(
    spec: UpsertSpec, dialect: sa.Dialect, shared: tuple[str, ...], columns: tuple[str, ...]
) -> str:
    quote = dialect.identifier_preparer.quote
    insert_columns = [*shared, *columns]
    on_conflict = _on_conflict(spec, quote, "IS NOT")  # IS DISTINCT FROM needs SQLite >= 3.39
    return (
        f"INSERT INTO {quote(spec.table.name)} ({', '.join(map(quote, insert_columns))})"
        f" VALUES ({', '.join('?' for _ in insert_columns)}) {on_conflict}"
    )


@functools.lru_cache(maxsize=256)
def _sqlite_existing(
    spec: UpsertSpec, dialect: sa.Dialect, shared: tuple[str, ...], varying: str, count: int
) -> str:
    quote = dialect.identifier_preparer.quote
    scope = "".join(f"{quote(name)} = ? AND " for name in spec.key if name in shared)
    selected = ", ".join(quote(name) for name in (varying, *spec.compared))
    return (
        f"SELECT {selected} FROM {quote(spec.table.name)}"
        f" WHERE {scope}{quote(varying)} IN ({', '.join('?' for _ in range(count))})"
    )
