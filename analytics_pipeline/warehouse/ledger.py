"""The ingestion ledger: failures per partition, and which partitions landed.

All functions take a connection the caller opened with ``engine.begin()`` and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa

from analytics_pipeline.records import ContentPartition, ErrorClass
from analytics_pipeline.warehouse._sql import dialect_insert, require_aware, require_date
from analytics_pipeline.warehouse.tables import ingestion_failures, partition_loads

# Messages are stored for humans; a runaway reply body must not bloat the table.
MESSAGE_MAX_CHARS = 4_000


@dataclass(frozen=True)
class FailureRecord:
    id: int
    organization_id: str
    integration_id: str
    asset: str
    partition_key: str
    error_class: str
    platform_code: str | None
    message: str
    run_id: str | None
    occurred_at: dt.datetime
    resolved_at: dt.datetime | None


# Selected by name so that a column added by a later migration does not break the dataclass.
_FAILURE_COLUMNS = tuple(ingestion_failures.c[field.name] for field in fields(FailureRecord))


def record_failure(
    conn: sa.Connection,
    *,
    organization_id: str,
    integration_id: str,
    asset: str,
    partition_key: str,
    error_class: ErrorClass | str,
    platform_code: str | None,
    message: str,
    run_id: str | None,
    occurred_at: dt.datetime,
) -> None:
    """Record one failure of a partition. `message` must already be free of secrets."""
    if len(message) > MESSAGE_MAX_CHARS:
        message = message[: MESSAGE_MAX_CHARS - 1] + "…"
    conn.execute(
        sa.insert(ingestion_failures).values(
            organization_id=organization_id,
            integration_id=integration_id,
            asset=asset,
            partition_key=partition_key,
            error_class=ErrorClass(error_class).value,
            platform_code=platform_code,
            message=message,
            run_id=run_id,
            occurred_at=require_aware("occurred_at", occurred_at),
            resolved_at=None,
        )
    )


def resolve_failures(
    conn: sa.Connection,
    *,
    integration_id: str,
    asset: str,
    partition_key: str,
    resolved_at: dt.datetime,
) -> int:
    """Mark the partition's open failures resolved (e.g. after it succeeded); returns how many.

    `rejected_metric` rows are left open: the partition landed, without that metric, and a
    later success of it says nothing about the metric."""
    result = conn.execute(
        sa.update(ingestion_failures)
        .where(
            ingestion_failures.c.integration_id == integration_id,
            ingestion_failures.c.asset == asset,
            ingestion_failures.c.partition_key == partition_key,
            ingestion_failures.c.resolved_at.is_(None),
            ingestion_failures.c.error_class != ErrorClass.REJECTED_METRIC.value,
        )
        .values(resolved_at=require_aware("resolved_at", resolved_at))
    )
    return int(result.rowcount)


def record_rejected_metric(
    conn: sa.Connection,
    *,
    organization_id: str,
    integration_id: str,
    asset: str,
    partition_key: str,
    metric: str,
    message: str,
    run_id: str | None,
    occurred_at: dt.datetime,
) -> bool:
    """One `rejected_metric` row per integration x metric x run (`platform_code` = the metric):
    False when this run already recorded it."""
    already = conn.execute(
        sa.select(sa.literal(1))
        .where(
            ingestion_failures.c.integration_id == integration_id,
            ingestion_failures.c.error_class == ErrorClass.REJECTED_METRIC.value,
            ingestion_failures.c.platform_code == metric[:64],
            ingestion_failures.c.run_id.is_(None)
            if run_id is None
            else ingestion_failures.c.run_id == run_id,
        )
        .limit(1)
    ).first()
    if already is not None:
        return False
    record_failure(
        conn,
        organization_id=organization_id,
        integration_id=integration_id,
        asset=asset,
        partition_key=partition_key,
        error_class=ErrorClass.REJECTED_METRIC,
        platform_code=metric[:64],
        message=message,
        run_id=run_id,
        occurred_at=occurred_at,
    )
    return True


def open_failures(conn: sa.Connection, integration_id: str | None = None) -> list[FailureRecord]:
    """Unresolved failures, oldest first (optionally of one integration)."""
    query = (
        sa.select(*_FAILURE_COLUMNS)
        .where(ingestion_failures.c.resolved_at.is_(None))
        .order_by(ingestion_failures.c.occurred_at, ingestion_failures.c.id)
    )
    if integration_id is not None:
        query = query.where(ingestion_failures.c.integration_id == integration_id)
    return [FailureRecord(**row._mapping) for row in conn.execute(query)]


def record_partition_load(
    conn: sa.Connection,
    *,
    integration_id: str,
    asset: str,
    partition_date: dt.date,
    loaded_at: dt.datetime,
    run_id: str | None,
    rows_written: int,
    details: Mapping[str, Any],
) -> None:
    """Record that a partition landed; a re-load replaces the previous record of it."""
    values = {
        "integration_id": integration_id,
        "asset": asset,
        "partition_date": require_date("partition_date", partition_date),
        "loaded_at": require_aware("loaded_at", loaded_at),
        "run_id": run_id,
        "rows_written": int(rows_written),
        "details": dict(details),
    }
    insert = dialect_insert(conn, partition_loads).values(**values)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[
                partition_loads.c.integration_id,
                partition_loads.c.asset,
                partition_loads.c.partition_date,
            ],
            set_={
                name: insert.excluded[name]
                for name in ("loaded_at", "run_id", "rows_written", "details")
            },
        )
    )


@dataclass(frozen=True)
class RunLedger:
    """What the warehouse holds of one run: partitions it loaded ("asset:key" -> rows written;
    a later run that reloads a partition takes it over) and partitions it recorded as failed
    ("asset:key" -> class; `rejected_metric` rows are not partition failures)."""

    loads: dict[str, int]
    failures: dict[str, str]


def run_ledger(conn: sa.Connection, run_id: str) -> RunLedger:
    loads = {
        f"{row.asset}:{ContentPartition(row.partition_date, row.integration_id).key}": int(
            row.rows_written
        )
        for row in conn.execute(
            sa.select(
                partition_loads.c.asset,
                partition_loads.c.partition_date,
                partition_loads.c.integration_id,
                partition_loads.c.rows_written,
            ).where(partition_loads.c.run_id == run_id)
        )
    }
    failures = {
        f"{row.asset}:{row.partition_key}": row.error_class
        for row in conn.execute(
            sa.select(
                ingestion_failures.c.asset,
                ingestion_failures.c.partition_key,
                ingestion_failures.c.error_class,
            )
            .where(
                ingestion_failures.c.run_id == run_id,
                ingestion_failures.c.error_class != ErrorClass.REJECTED_METRIC.value,
            )
            .order_by(ingestion_failures.c.id)
        )
    }
    return RunLedger(loads, failures)
