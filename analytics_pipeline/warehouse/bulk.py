"""Bulk upserts that skip identical rows and count exactly, without SQLAlchemy's per-row cost.

The caller gives rows already de-duplicated and sorted by key, as tuples, plus the values shared
by every row of the call (organization, integration, day, timestamps): those are sent once, not
once per row. Everything runs in the caller's transaction; nothing commits.

A row is "identical" (skipped, counted unchanged) when writing it would leave the stored row as
it is. `UpsertSpec` says how each column is written:
- `compared`: the input replaces the stored value, NULL included; a difference is an update;
- `touched`: set by every update, never compared (e.g. updated_at, observed_at);
- `snapshots` (`Snapshot(column, stamp)`): a value only knowable at some moments (e.g. a
  followers total, which platforms tell for "now" only). A NULL input KEEPS the stored value
  (``SET column = COALESCE(excluded.column, stored)``), so a row whose only difference is a
  NULL snapshot is identical; a non-NULL input that differs is an update. The optional `stamp`
  (e.g. when the snapshot was taken) is set to its input only when the snapshot gets a
  different non-NULL value (``CASE WHEN <that> THEN excluded.stamp ELSE stored END``), and is
  inserted NULL with a NULL snapshot. These rules are in every piece of SQL (the identical-row
  skip, the ON CONFLICT SET and its WHERE), so they hold against a concurrent writer too;
- any other non-key column is written on insert only (e.g. first_seen_at).

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

SQLite: the batch's stored rows are read first (one indexed SELECT of the key, the compared and
the snapshot columns, as stored: no conversion back to Python types) and rows identical to them
are skipped (a NULL snapshot input matches any stored value); the rest go through
``executemany`` of a prepared ``INSERT ... VALUES (?1, ?2, ...) ON CONFLICT DO UPDATE ... WHERE
<a value differs>`` (plain tuples, no per-row SQLAlchemy processing; numbered parameters so a
stamp's inserted value can test its snapshot's), whose rowcount is the rows really written.
SQLite transactions take the write lock up front (BEGIN IMMEDIATE, see engine.py), so that read
cannot be stale and inserted = written rows whose key was absent.

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
class Snapshot:
    """A column holding a snapshot that a later write may not have (see the module docstring).

    A NULL input keeps the stored `column`; `stamp` (optional, e.g. when the snapshot was taken)
    takes its input only when `column` gets a different non-NULL value, and stays NULL on an
    insert without a snapshot.
    """

    column: str
    stamp: str | None = None


@dataclass(frozen=True)
class UpsertSpec:
    """How rows of `table` are upserted.

    `compared`: columns whose change makes an update (and which the update sets); `touched`: set
    by an update but never compared (e.g. updated_at); `snapshots`: compared and set by the
    `Snapshot` rules; any other non-key column is written on insert only (e.g. first_seen_at).
    Every key, compared and snapshot column (and stamp) must be given in each call.
    """

    table: sa.Table
    key: tuple[str, ...]
    compared: tuple[str, ...]
    touched: tuple[str, ...]
    snapshots: tuple[Snapshot, ...] = ()

    def __post_init__(self) -> None:
        roles = [*self.key, *self.compared, *self.touched, *_snapshot_columns(self)]
        if len(set(roles)) != len(roles):
            raise ValueError(f"a column of {self.table.name} has more than one role: {roles}")


def _snapshot_columns(spec: UpsertSpec) -> list[str]:
    """The snapshot columns and their stamps."""
    stamps = [snapshot.stamp for snapshot in spec.snapshots if snapshot.stamp is not None]
    return [*(snapshot.column for snapshot in spec.snapshots), *stamps]


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

Quote = Callable[[str], str]  # the dialect's identifier quoting


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


def _required_columns(spec: UpsertSpec, given: Sequence[str]) -> None:
    missing = [
        name for name in (*spec.key, *spec.compared, *_snapshot_columns(spec)) if name not in given
    ]
    if missing:
        raise ValueError(f"columns missing from the upsert of {spec.table.name}: {missing}")


def _snapshot_changes(snapshot: Snapshot, table: str, quote: Quote, distinct: str) -> str:
    """True when the write brings `snapshot.column` a different non-NULL value."""
    new, old = f"excluded.{quote(snapshot.column)}", f"{table}.{quote(snapshot.column)}"
    return f"({new} IS NOT NULL AND {old} {distinct} {new})"


def _snapshot_assignments(snapshot: Snapshot, table: str, quote: Quote, distinct: str) -> list[str]:
    """The column keeps its stored value on a NULL input; the stamp follows real changes."""
    column = quote(snapshot.column)
    assignments = [f"{column} = COALESCE(excluded.{column}, {table}.{column})"]
    if snapshot.stamp is not None:
        stamp, changes = quote(snapshot.stamp), _snapshot_changes(snapshot, table, quote, distinct)
        assignments.append(
            f"{stamp} = CASE WHEN {changes} THEN excluded.{stamp} ELSE {table}.{stamp} END"
        )
    return assignments


def _on_conflict(spec: UpsertSpec, quote: Quote, distinct: str) -> str:
    """``ON CONFLICT (key) DO UPDATE SET ... WHERE <a value would change>`` (both dialects)."""
    table = quote(spec.table.name)
    assignments = [
        f"{quote(name)} = excluded.{quote(name)}" for name in (*spec.compared, *spec.touched)
    ]
    differs = [f"{table}.{quote(name)} {distinct} excluded.{quote(name)}" for name in spec.compared]
    for snapshot in spec.snapshots:
        assignments += _snapshot_assignments(snapshot, table, quote, distinct)
        differs.append(_snapshot_changes(snapshot, table, quote, distinct))
    key = ", ".join(quote(name) for name in spec.key)
    return (
        f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(assignments)} WHERE {' OR '.join(differs)}"
    )


def _inserted_value(spec: UpsertSpec, name: str, value: Callable[[str], str]) -> str:
    """The SQL expression inserted into `name`, `value(column)` being a column's input: a
    snapshot's stamp is NULL when the snapshot is."""
    for snapshot in spec.snapshots:
        if snapshot.stamp == name:
            return f"CASE WHEN {value(snapshot.column)} IS NOT NULL THEN {value(name)} END"
    return value(name)


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
    _required_columns(spec, (*shared, *columns))
    quote = dialect.identifier_preparer.quote
    table = quote(spec.table.name)

    def sql_type(name: str) -> str:
        return str(spec.table.c[name].type.compile(dialect=dialect))

    def array(index: int, name: str) -> str:
        # Integer arrays travel as text (see `_integer_array_literal`), the others in binary.
        kind = "s" if _is_plain_integer(spec.table.c[name].type, dialect) else "b"
        return f"%(a{index}){kind}::{sql_type(name)}[]"

    # Shared values are named parameters cast to the column's type (reused where needed); each
    # varying column is one typed array parameter, unnested back into rows.
    values = {name: f"%(s{index})b::{sql_type(name)}" for index, name in enumerate(shared)}
    values.update({name: f"u.{quote(name)}" for name in columns})
    arrays = ", ".join(array(index, name) for index, name in enumerate(columns))
    aliases = ", ".join(quote(name) for name in columns)
    insert_columns = [*shared, *columns]
    selected = ", ".join(_inserted_value(spec, name, values.__getitem__) for name in insert_columns)
    on_conflict = _on_conflict(spec, quote, "IS DISTINCT FROM")
    return (
        f"WITH written AS (INSERT INTO {table} ({', '.join(map(quote, insert_columns))})"
        f" SELECT {selected}"
        f" FROM unnest({arrays}) WITH ORDINALITY AS u({aliases}, _position)"
        f" WHERE NOT EXISTS (SELECT FROM {table} AS t"
        f" WHERE {_postgres_identical(spec, quote, values)} OFFSET 0)"
        f" ORDER BY u._position {on_conflict} RETURNING (xmax = 0) AS inserted)"
        " SELECT count(*) FILTER (WHERE inserted), count(*) FROM written"
    )


def _postgres_identical(spec: UpsertSpec, quote: Quote, values: Mapping[str, str]) -> str:
    """True when the stored row `t` already holds what writing `values` would leave in it."""
    same = [f"t.{quote(name)} = {values[name]}" for name in spec.key]
    same += [f"t.{quote(name)} IS NOT DISTINCT FROM {values[name]}" for name in spec.compared]
    for snapshot in spec.snapshots:  # a NULL input keeps the stored snapshot
        new, old = values[snapshot.column], f"t.{quote(snapshot.column)}"
        same.append(f"({new} IS NULL OR {old} IS NOT DISTINCT FROM {new})")
    return " AND ".join(same)


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
    compared = [(names + cols).index(name) for name in _sqlite_compared(spec)]
    kept = frozenset(range(len(spec.compared), len(compared)))  # the snapshots' positions
    inserted = written = 0
    for batch in _batches(rows, SQLITE_BATCH_SIZE):
        arrays = _processed_columns(conn, spec.table, cols, batch)
        keys = arrays[position]
        select = _sqlite_existing(spec, conn.dialect, names, varying, len(keys))
        existing = _sqlite_stored(conn, select, (*scope, *keys))
        full_rows = [(*shared_values, *values) for values in zip(*arrays, strict=True)]
        to_write = _sqlite_to_write(keys, full_rows, existing, compared, kept)
        if to_write:
            result = conn.exec_driver_sql(upsert, [row for _key, row in to_write])
            written += result.rowcount
            inserted += sum(1 for key, _row in to_write if key not in existing)
    return UpsertCounts(
        inserted=inserted, updated=written - inserted, unchanged=len(rows) - written
    )


def _sqlite_compared(spec: UpsertSpec) -> tuple[str, ...]:
    """The columns the identical-row skip reads and compares: compared, then snapshots."""
    return (*spec.compared, *(snapshot.column for snapshot in spec.snapshots))


def _sqlite_stored(
    conn: sa.Connection, select: str, parameters: Sequence[Any]
) -> dict[Any, tuple[Any, ...]]:
    """Varying key -> the `_sqlite_compared` values stored for it."""
    return {row[0]: tuple(row[1:]) for row in conn.exec_driver_sql(select, tuple(parameters))}


def _sqlite_to_write(
    keys: Sequence[Any],
    full_rows: Sequence[tuple[Any, ...]],
    existing: Mapping[Any, tuple[Any, ...]],
    compared: Sequence[int],
    kept: frozenset[int],
) -> list[tuple[Any, tuple[Any, ...]]]:
    """(key, row) of the rows that would change the stored row (or have none).

    Stored values are compared as stored (the bind-processed form), so identical rows are
    skipped without converting anything back; the SQL's WHERE decides the rest. A NULL snapshot
    input (a position in `kept`) compares as the stored value it keeps.
    """
    pairs = zip(keys, full_rows, strict=True)
    if not kept:
        return [
            (key, row)
            for key, row in pairs
            if existing.get(key) != tuple(row[index] for index in compared)
        ]
    return [
        (key, row)
        for key, row in pairs
        if not _keeps_stored(existing.get(key), [row[index] for index in compared], kept)
    ]


def _keeps_stored(stored: tuple[Any, ...] | None, values: list[Any], kept: frozenset[int]) -> bool:
    """True when writing `values` would leave the `stored` values as they are."""
    if stored is None:
        return False
    return all(
        new == old or (new is None and position in kept)
        for position, (new, old) in enumerate(zip(values, stored, strict=True))
    )


@functools.lru_cache(maxsize=64)
def _sqlite_upsert(
    spec: UpsertSpec, dialect: sa.Dialect, shared: tuple[str, ...], columns: tuple[str, ...]
) -> str:
    """``INSERT ... VALUES (?1, ?2, ...) ON CONFLICT ...``: numbered parameters, so that a
    stamp's inserted value can use its snapshot's parameter too."""
    _required_columns(spec, (*shared, *columns))
    quote = dialect.identifier_preparer.quote
    insert_columns = [*shared, *columns]
    numbers = {name: f"?{index}" for index, name in enumerate(insert_columns, start=1)}
    values = ", ".join(_inserted_value(spec, name, numbers.__getitem__) for name in insert_columns)
    on_conflict = _on_conflict(spec, quote, "IS NOT")  # IS DISTINCT FROM needs SQLite >= 3.39
    return (
        f"INSERT INTO {quote(spec.table.name)} ({', '.join(map(quote, insert_columns))})"
        f" VALUES ({values}) {on_conflict}"
    )


@functools.lru_cache(maxsize=256)
def _sqlite_existing(
    spec: UpsertSpec, dialect: sa.Dialect, shared: tuple[str, ...], varying: str, count: int
) -> str:
    quote = dialect.identifier_preparer.quote
    scope = "".join(f"{quote(name)} = ? AND " for name in spec.key if name in shared)
    selected = ", ".join(quote(name) for name in (varying, *_sqlite_compared(spec)))
    return (
        f"SELECT {selected} FROM {quote(spec.table.name)}"
        f" WHERE {scope}{quote(varying)} IN ({', '.join('?' for _ in range(count))})"
    )
