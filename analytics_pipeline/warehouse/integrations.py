"""The registry of tracked integrations (one social account of one organization each).

`integration_id` becomes a Dagster partition key, hence its strict format. `credential_env` is
the NAME of the environment variable holding the access token, never the token: the validator
refuses anything that does not look like a variable name and never echoes a long refused value
(it may be a pasted token).

Removing an integration deletes its registry row only; the content and metrics it already loaded
stay in the warehouse (dashboards keep the history). Pause it instead to stop ingestion.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa

from analytics_pipeline.records import IntegrationStatus, check_account_id
from analytics_pipeline.settings import shown
from analytics_pipeline.warehouse._sql import dialect_insert, require_aware
from analytics_pipeline.warehouse.tables import (
    INTEGRATION_STATUSES,
    PLATFORMS,
    tracked_integrations,
)

_INTEGRATION_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_CREDENTIAL_ENV = re.compile(r"[A-Z_][A-Z0-9_]*")
_CREDENTIAL_ENV_MAX = 128
_ORGANIZATION_ID_MAX = 64
_TEXT_MAX = 255

_table = tracked_integrations


class IntegrationExistsError(ValueError):
    """An integration with this id is already tracked."""


class DuplicateAccountError(IntegrationExistsError):
    """The organization already tracks this account of this platform under another id (the
    `uq_tracked_integrations_account` constraint: one account fetched twice would double every
    dashboard row)."""


class UnknownIntegrationError(LookupError):
    """No tracked integration has this id."""


DEFAULT_PAUSE_REASON = "paused by an operator"


@dataclass(frozen=True)
class TrackedIntegration:
    organization_id: str
    integration_id: str
    platform: str
    external_account_id: str
    display_name: str
    credential_env: str
    status: IntegrationStatus
    status_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


def validate_integration_id(value: str) -> str:
    """`value` if it can be an integration id (and so a Dagster partition key), else ValueError."""
    if isinstance(value, str) and _INTEGRATION_ID.fullmatch(value):
        return value
    raise ValueError(
        f"Invalid integration id {shown(value)}: use 1 to 64 characters among lowercase "
        "letters a-z, digits 0-9, '-' and '_', starting with a letter or a digit (e.g. "
        "'acme-facebook-main'). It becomes a Dagster partition key, so uppercase, spaces, "
        "'|' and ',' are not allowed."
    )


def validate_credential_env(name: str) -> str:
    """`name` if it is an environment variable NAME (e.g. ACME_FB_TOKEN), else ValueError.

    The message never contains a refused value longer than 40 characters: it may be a token.
    """
    if (
        isinstance(name, str)
        and len(name) <= _CREDENTIAL_ENV_MAX
        and _CREDENTIAL_ENV.fullmatch(name)
    ):
        return name
    raise ValueError(
        f"Invalid credential_env {shown(name)}: give the NAME of the environment variable "
        f"that holds the access token (uppercase letters, digits and '_', not starting with a "
        f"digit, at most {_CREDENTIAL_ENV_MAX} characters, e.g. ACME_FACEBOOK_TOKEN), never "
        "the token itself."
    )


def validate_platform(platform: str) -> str:
    if platform in PLATFORMS:
        return platform
    raise ValueError(f"Unknown platform {shown(platform)}: expected one of {', '.join(PLATFORMS)}")


def validate_status(status: str) -> str:
    if status in INTEGRATION_STATUSES:
        return status
    raise ValueError(
        f"Unknown integration status {shown(status)}: expected one of "
        f"{', '.join(INTEGRATION_STATUSES)}"
    )


def _validate_text(field: str, value: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise ValueError(f"{field} must be a non-empty string of at most {limit} characters")
    return value


def _new_row(
    *,
    organization_id: str,
    integration_id: str,
    platform: str,
    external_account_id: str,
    display_name: str,
    credential_env: str,
    now: dt.datetime,
) -> dict[str, Any]:
    now = require_aware("now", now)
    platform = validate_platform(platform)
    return {
        "organization_id": _validate_text("organization_id", organization_id, _ORGANIZATION_ID_MAX),
        "integration_id": validate_integration_id(integration_id),
        "platform": platform,
        "external_account_id": check_account_id(platform, external_account_id),
        "display_name": _validate_text("display_name", display_name, _TEXT_MAX),
        "credential_env": validate_credential_env(credential_env),
        "status": IntegrationStatus.ACTIVE.value,
        "status_reason": None,
        "created_at": now,
        "updated_at": now,
    }


# Selected by name so that a column added by a later migration does not break the dataclass.
_COLUMNS = tuple(_table.c[field.name] for field in fields(TrackedIntegration))


def _from_row(row: sa.Row[Any]) -> TrackedIntegration:
    values = dict(row._mapping)
    values["status"] = IntegrationStatus(values["status"])
    return TrackedIntegration(**values)


def _insert_if_absent(conn: sa.Connection, row: dict[str, Any]) -> bool:
    """True if inserted; False if the id or the account is taken (ON CONFLICT DO NOTHING covers
    every unique constraint, so a PostgreSQL transaction is not aborted either way)."""
    statement = (
        dialect_insert(conn, _table).on_conflict_do_nothing().returning(_table.c.integration_id)
    )
    return conn.execute(statement, row).first() is not None


def find_account(
    conn: sa.Connection, organization_id: str, platform: str, external_account_id: str
) -> TrackedIntegration | None:
    """The integration tracking this account of `platform` for the organization, if any."""
    row = conn.execute(
        sa.select(*_COLUMNS).where(
            _table.c.organization_id == organization_id,
            _table.c.platform == platform,
            _table.c.external_account_id == external_account_id,
        )
    ).first()
    return None if row is None else _from_row(row)


def _duplicate_account(existing: TrackedIntegration) -> DuplicateAccountError:
    return DuplicateAccountError(
        f"Organization {existing.organization_id!r} already tracks {existing.platform} account "
        f"{existing.external_account_id} as integration {existing.integration_id!r}; one "
        "account is tracked once (remove or reuse that integration)"
    )


def _refuse_taken(conn: sa.Connection, row: dict[str, Any]) -> None:
    """Raise the error that explains why `row` could not be inserted or updated."""
    existing = find_account(
        conn, row["organization_id"], row["platform"], row["external_account_id"]
    )
    if existing is not None and existing.integration_id != row["integration_id"]:
        raise _duplicate_account(existing)


def add_integration(
    conn: sa.Connection,
    *,
    organization_id: str,
    integration_id: str,
    platform: str,
    external_account_id: str,
    display_name: str,
    credential_env: str,
    now: dt.datetime,
) -> TrackedIntegration:
    """Start tracking an integration (status active); IntegrationExistsError if the id is taken."""
    row = _new_row(
        organization_id=organization_id,
        integration_id=integration_id,
        platform=platform,
        external_account_id=external_account_id,
        display_name=display_name,
        credential_env=credential_env,
        now=now,
    )
    if not _insert_if_absent(conn, row):
        if get_integration(conn, integration_id) is not None:
            raise IntegrationExistsError(f"Integration {integration_id!r} is already tracked")
        _refuse_taken(conn, row)
        raise IntegrationExistsError(f"Integration {integration_id!r} could not be added")
    return TrackedIntegration(**row)


def upsert_integration(
    conn: sa.Connection,
    *,
    organization_id: str,
    integration_id: str,
    platform: str,
    external_account_id: str,
    display_name: str,
    credential_env: str,
    now: dt.datetime,
) -> TrackedIntegration:
    """Like add_integration, but idempotent: an existing integration is updated if it differs.

    Status and created_at of an existing integration are kept. Changing its organization or
    platform is refused (IntegrationExistsError): the loaded data is keyed by them.
    """
    row = _new_row(
        organization_id=organization_id,
        integration_id=integration_id,
        platform=platform,
        external_account_id=external_account_id,
        display_name=display_name,
        credential_env=credential_env,
        now=now,
    )
    if _insert_if_absent(conn, row):
        return TrackedIntegration(**row)
    current = get_integration(conn, integration_id)
    if current is None:  # the account is taken by another id, or the row was removed meanwhile
        _refuse_taken(conn, row)
        raise UnknownIntegrationError(f"Integration {integration_id!r} vanished during upsert")
    if (current.organization_id, current.platform) != (organization_id, platform):
        raise IntegrationExistsError(
            f"Integration {integration_id!r} already exists for organization "
            f"{current.organization_id!r} on {current.platform}; use another id"
        )
    changes = {
        name: row[name]
        for name in ("external_account_id", "display_name", "credential_env")
        if getattr(current, name) != row[name]
    }
    if not changes:
        return current
    _refuse_taken(conn, row)
    conn.execute(
        sa.update(_table)
        .where(_table.c.integration_id == integration_id)
        .values(**changes, updated_at=row["updated_at"])
    )
    found = get_integration(conn, integration_id)
    assert found is not None
    return found


def list_integrations(
    conn: sa.Connection, statuses: Collection[str] | None = None
) -> list[TrackedIntegration]:
    """Tracked integrations (optionally only those in `statuses`), oldest first."""
    query = sa.select(*_COLUMNS).order_by(_table.c.created_at, _table.c.integration_id)
    if statuses is not None:
        wanted = sorted({validate_status(status) for status in statuses})
        if not wanted:
            return []
        query = query.where(_table.c.status.in_(wanted))
    return [_from_row(row) for row in conn.execute(query)]


def get_integration(conn: sa.Connection, integration_id: str) -> TrackedIntegration | None:
    row = conn.execute(
        sa.select(*_COLUMNS).where(_table.c.integration_id == integration_id)
    ).first()
    return None if row is None else _from_row(row)


def set_integration_status(
    conn: sa.Connection,
    integration_id: str,
    status: str,
    reason: str | None,
    now: dt.datetime,
) -> TrackedIntegration:
    """Set status (active|paused|needs_reauth) and its reason; a no-op if both are unchanged.

    `reason` is stored as given: callers pass text that is already free of secrets.
    """
    validate_status(status)
    now = require_aware("now", now)
    current = get_integration(conn, integration_id)
    if current is None:
        raise UnknownIntegrationError(f"No tracked integration {shown(integration_id)}")
    if (current.status, current.status_reason) == (status, reason):
        return current
    conn.execute(
        sa.update(_table)
        .where(_table.c.integration_id == integration_id)
        .values(status=status, status_reason=reason, updated_at=now)
    )
    found = get_integration(conn, integration_id)
    assert found is not None
    return found


def pause_integration(
    conn: sa.Connection, integration_id: str, reason: str | None, now: dt.datetime
) -> tuple[TrackedIntegration, bool]:
    """Pause; (the integration, whether anything changed).

    Without a new `reason` the earlier one is kept (e.g. the needs_reauth reason, or the reason
    of an earlier pause); `DEFAULT_PAUSE_REASON` only when there was none. Pausing a paused
    integration changes nothing unless a different reason is given."""
    current = _require(conn, integration_id)
    if current.status == IntegrationStatus.PAUSED and reason in (None, current.status_reason):
        return current, False
    kept = reason or current.status_reason or DEFAULT_PAUSE_REASON
    return set_integration_status(conn, integration_id, IntegrationStatus.PAUSED, kept, now), True


def resume_integration(
    conn: sa.Connection, integration_id: str, now: dt.datetime
) -> tuple[TrackedIntegration, bool]:
    """Make active (reason cleared); (the integration, whether it was not active before)."""
    current = _require(conn, integration_id)
    if current.status == IntegrationStatus.ACTIVE:
        return current, False
    return set_integration_status(conn, integration_id, IntegrationStatus.ACTIVE, None, now), True


def _require(conn: sa.Connection, integration_id: str) -> TrackedIntegration:
    current = get_integration(conn, integration_id)
    if current is None:
        raise UnknownIntegrationError(f"No tracked integration {shown(integration_id)}")
    return current


def remove_integration(conn: sa.Connection, integration_id: str) -> None:
    """Stop tracking an integration (its loaded data stays); UnknownIntegrationError if absent."""
    result = conn.execute(sa.delete(_table).where(_table.c.integration_id == integration_id))
    if result.rowcount == 0:
        raise UnknownIntegrationError(f"No tracked integration {shown(integration_id)}")
