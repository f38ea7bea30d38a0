"""The SQL warehouse: the only place in the project that writes SQL.

Writes and reads take a `sqlalchemy.Connection` the caller opened with ``engine.begin()``; nothing
here commits, so one Dagster partition is one transaction.
"""

from analytics_pipeline.warehouse.account_metrics import upsert_account_metrics
from analytics_pipeline.warehouse.checks_sql import (
    CheckScope,
    Violations,
    content_integration_mismatches,
    decreased_counters,
    default_scope,
    find_violations,
    followers_without_observed_at,
    mixed_value_kinds,
    negative_account_values,
    negative_metric_values,
    orphan_metric_rows,
)
from analytics_pipeline.warehouse.content import (
    UpsertCounts,
    content_ids_published_between,
    permalinks_published_between,
    upsert_content_items,
    upsert_content_metrics,
)
from analytics_pipeline.warehouse.engine import (
    WarehouseConfigError,
    default_warehouse_url,
    make_engine,
)
from analytics_pipeline.warehouse.integrations import (
    DEFAULT_PAUSE_REASON,
    DuplicateAccountError,
    IntegrationExistsError,
    TrackedIntegration,
    UnknownIntegrationError,
    add_integration,
    find_account,
    get_integration,
    list_integrations,
    pause_integration,
    remove_integration,
    resume_integration,
    set_integration_status,
    upsert_integration,
    validate_credential_env,
    validate_integration_id,
)
from analytics_pipeline.warehouse.ledger import (
    FailureRecord,
    open_failures,
    record_failure,
    record_partition_load,
    record_rejected_metric,
    resolve_failures,
)
from analytics_pipeline.warehouse.migrations import migrate

__all__ = [
    "DEFAULT_PAUSE_REASON",
    "CheckScope",
    "DuplicateAccountError",
    "FailureRecord",
    "IntegrationExistsError",
    "TrackedIntegration",
    "UnknownIntegrationError",
    "UpsertCounts",
    "Violations",
    "WarehouseConfigError",
    "add_integration",
    "content_ids_published_between",
    "content_integration_mismatches",
    "decreased_counters",
    "default_scope",
    "default_warehouse_url",
    "find_account",
    "find_violations",
    "followers_without_observed_at",
    "get_integration",
    "list_integrations",
    "make_engine",
    "migrate",
    "mixed_value_kinds",
    "negative_account_values",
    "negative_metric_values",
    "open_failures",
    "orphan_metric_rows",
    "pause_integration",
    "permalinks_published_between",
    "record_failure",
    "record_partition_load",
    "record_rejected_metric",
    "remove_integration",
    "resolve_failures",
    "resume_integration",
    "set_integration_status",
    "upsert_account_metrics",
    "upsert_content_items",
    "upsert_content_metrics",
    "upsert_integration",
    "validate_credential_env",
    "validate_integration_id",
]
