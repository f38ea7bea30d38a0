"""Checks an operator runs when adding or repairing an integration (Dagster-free).

- `local_credential(...)`: the integration's token as THIS process would resolve it (today: the
  environment variable the integration names), or None. The CLI uses it to warn at `add` and to
  refuse a `backfill`/`resume` that would fail every partition on a missing token.
- `verify(...)`: ONE platform call with that token (`PlatformClient.describe_account`), so an
  operator learns at once whether the id names an account of the platform and whether the token
  reaches it, instead of the first run failing 28 partitions.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from analytics_pipeline.platforms.base import (
    Account,
    AccountDescription,
    PlatformClient,
    PlatformError,
    Secret,
)
from analytics_pipeline.records import ErrorClass


class CredentialMissingError(LookupError):
    """The integration's credential cannot be resolved in this process."""


@dataclass(frozen=True)
class CredentialRef:
    """What identifies an integration's credential (never the token itself)."""

    integration_id: str
    credential_env: str

    def where(self) -> str:
        return f"${self.credential_env}"


def local_credential(ref: CredentialRef) -> Secret | None:
    """The token of `ref` as this process resolves it, or None when it cannot."""
    value = os.environ.get(ref.credential_env, "")
    return Secret(value) if value.strip() else None


def require_credential(ref: CredentialRef) -> Secret:
    token = local_credential(ref)
    if token is None:
        raise CredentialMissingError(
            f"The credential of {ref.integration_id} ({ref.where()}) is not set in this "
            f"environment: export {ref.credential_env}=<token> and retry."
        )
    return token


@dataclass(frozen=True)
class Verified:
    description: AccountDescription
    api_calls: int


def verify(account: Account, client_factory: Callable[[Account], PlatformClient]) -> Verified:
    """`describe_account()` of a fresh client for `account`: PlatformError when it fails."""
    client = client_factory(account)
    try:
        description = client.describe_account()
        return Verified(description, client.api_calls)
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
