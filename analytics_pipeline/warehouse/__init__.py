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
from analytics_pipeline.warehouse.credentials import (
    StoredCredential,
    delete_credential,
    get_credential,
    lock_all_credentials,
    lock_credential,
    put_credential,
    replace_ciphertext,
)
from analytics_pipeline.warehouse.engine import (
    WarehouseConfigError,
    default_warehouse_url,
    make_engine,
)
from analytics_pipeline.warehouse.integrations import (
    IntegrationExistsError,
    TrackedIntegration,
    UnknownIntegrationError,
    add_integration,
    get_integration,
    list_integrations,
    remove_integration,
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
    resolve_failures,
)
from analytics_pipeline.warehouse.migrations import migrate

__all__ = [
    "CheckScope",
    "FailureRecord",
    "IntegrationExistsError",
    "StoredCredential",
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
    "delete_credential",
    "find_violations",
    "followers_without_observed_at",
    "get_credential",
    "get_integration",
    "list_integrations",
    "lock_all_credentials",
    "lock_credential",
    "make_engine",
    "migrate",
    "mixed_value_kinds",
    "negative_account_values",
    "negative_metric_values",
    "open_failures",
    "orphan_metric_rows",
    "permalinks_published_between",
    "put_credential",
    "record_failure",
    "record_partition_load",
    "remove_integration",
    "replace_ciphertext",
    "resolve_failures",
    "set_integration_status",
    "upsert_account_metrics",
    "upsert_content_items",
    "upsert_content_metrics",
    "upsert_integration",
    "validate_credential_env",
    "validate_integration_id",
]
