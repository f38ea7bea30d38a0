"""Checks an operator runs when adding or repairing an integration (Dagster-free).

- `local_credential(...)`: the integration's token as THIS process would resolve it (the
  providers of `credentials.resolve_credential`: encrypted store, secrets directory, environment
  variable), or None. The CLI uses it to warn at `add` and to refuse a `backfill`/`resume` that
  would fail every partition on a missing token.
- `verify(...)`: ONE platform call with that token (`PlatformClient.describe_account`), so an
  operator learns at once whether the id names an account of the platform and whether the token
  reaches it, instead of the first run failing 28 partitions. For Meta (Facebook, Instagram) a
  second call asks how long the token stays usable (`token_status`, debug_token), and
  `expiry_warning` says when it expires or loses data access within
  ANALYTICS_TOKEN_EXPIRY_WARN_DAYS.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from analytics_pipeline.platforms.base import (
    Account,
    AccountDescription,
    PlatformClient,
    PlatformError,
    Secret,
    TokenStatus,
)
from analytics_pipeline.records import ErrorClass


class CredentialMissingError(LookupError):
    """The integration's credential cannot be resolved in this process."""


@dataclass(frozen=True)
class CredentialRef:
    """What identifies an integration's credential (never the token itself)."""

    integration_id: str
    platform: str
    credential_env: str

    def where(self) -> str:
        return f"${self.credential_env}"


def local_credential(engine: sa.Engine, ref: CredentialRef) -> Secret | None:
    """The token of `ref` as this process resolves it, or None when it cannot."""
    from analytics_pipeline import credentials

    try:
        resolved = credentials.resolve_credential(
            engine,
            ref.integration_id,
            ref.platform,
            ref.credential_env,
            credentials.load_credential_settings(),
        )
    except credentials.CredentialError:
        return None
    return resolved.token


def require_credential(engine: sa.Engine, ref: CredentialRef) -> Secret:
    token = local_credential(engine, ref)
    if token is None:
        raise CredentialMissingError(
            f"The credential of {ref.integration_id} ({ref.where()}) is not set in this "
            f"environment: export {ref.credential_env}=<token> (or store it: `integrations "
            f"set-credential`, or a file in ANALYTICS_SECRETS_DIR) and retry."
        )
    return token


@dataclass(frozen=True)
class Verified:
    description: AccountDescription
    api_calls: int
    # What the platform said about the token's lifetime (Meta only), or why it could not say.
    token_status: TokenStatus | None = None
    token_error: PlatformError | None = None


def verify(account: Account, client_factory: Callable[[Account], PlatformClient]) -> Verified:
    """`describe_account()` of a fresh client for `account` (PlatformError when it fails), then
    its `token_status()` (a failure of that one is kept in `token_error`: the account was
    verified all the same)."""
    client = client_factory(account)
    try:
        description = client.describe_account()
        status, error = None, None
        try:
            status = client.token_status()
        except PlatformError as exc:
            error = exc
        return Verified(description, client.api_calls, status, error)
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()


def describe_failure(account: Account, error: PlatformError) -> str:
    """One line for a failed verification: what it means for the operator, then the platform's
    own (redacted) words."""
    meaning = {
        ErrorClass.PERMANENT_CREDENTIAL: "the credential was refused or lacks a permission",
        ErrorClass.PERMANENT_CONFIG: "the account id or the configuration is wrong",
        ErrorClass.PERMANENT_OBJECT: "the account does not exist or is not visible",
        ErrorClass.TRANSIENT: "the platform is unavailable right now (try again later)",
        ErrorClass.INVALID_RESPONSE: "the platform's reply was not understood",
    }.get(error.error_class, error.error_class.value)
    return (
        f"{account.integration_id}: {account.platform} account "
        f"{account.external_account_id} NOT verified: {meaning}: {error}"
    )


def expiry_warning(
    account: Account, verified: Verified, now: dt.datetime, warn_days: int
) -> str | None:
    """One line when the verified token expires or loses data access within `warn_days` days,
    is no longer valid, or its expiry could not be checked; None otherwise."""
    from analytics_pipeline.credentials.meta import meta_expiry_warning

    if verified.token_error is not None:
        return (
            f"The expiry of the token of integration {account.integration_id!r} could not be "
            f"checked: {verified.token_error}"
        )
    if verified.token_status is None:
        return None
    return meta_expiry_warning(account.integration_id, verified.token_status, now, warn_days)
