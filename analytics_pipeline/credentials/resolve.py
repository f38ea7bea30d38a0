"""Which credential an integration uses, decided when its client is built (every run).

Order, first match wins:
1. the encrypted store (`integrations set-credential`): for credentials that rotate (OAuth with
   refresh: X, LinkedIn); the client gets a `StoredTokenSource` that refreshes them;
2. the secrets directory `ANALYTICS_SECRETS_DIR`: the file named like the integration's
   `credential_env` (e.g. /run/secrets/ACME_FB_TOKEN), as Docker and Kubernetes mount
   secrets; read at every run, so a new or replaced file needs no restart;
3. the environment variable named `credential_env` of the process running the step.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.credentials.config import CredentialSettings
from analytics_pipeline.credentials.crypto import KEY_ENV, CredentialKeyError
from analytics_pipeline.credentials.store import Clock, StoredTokenSource, load_credential
from analytics_pipeline.platforms.base import Secret, TokenSource
from analytics_pipeline.records import ErrorClass

STORE = "encrypted store"


class CredentialError(Exception):
    """No usable credential: `error_class` says whose problem it is (the integration's
    credential, or the deployment's configuration such as a missing key)."""

    def __init__(self, message: str, error_class: ErrorClass) -> None:
        super().__init__(message)
        self.error_class = error_class


@dataclass(frozen=True)
class ResolvedCredential:
    token: Secret  # empty when only the store's refresh token exists (refreshed on first use)
    source: str  # where it came from: "encrypted store", a file path, "$NAME" (never a value)
    token_source: TokenSource | None = None


def resolve_credential(
    engine: sa.Engine,
    integration_id: str,
    platform: str,
    credential_env: str,
    settings: CredentialSettings,
    *,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> ResolvedCredential:
    """The integration's credential (see the module docstring), or CredentialError."""
    stored = _from_store(engine, integration_id, platform, settings, clock)
    if stored is not None:
        return stored
    from_file = _from_secrets_dir(credential_env, settings)
    if from_file is not None:
        return from_file
    value = (os.environ if environ is None else environ).get(credential_env, "").strip()
    if value:
        return ResolvedCredential(Secret(value), f"${credential_env}")
    where = f"no file {settings.secret_file(credential_env)}, " if settings.secrets_dir else ""
    raise CredentialError(
        f"No credential for integration {integration_id!r}: nothing in the encrypted store, "
        f"{where}and environment variable {credential_env} is not set or empty where this "
        "runs.",
        ErrorClass.PERMANENT_CREDENTIAL,
    )


def _from_store(
    engine: sa.Engine,
    integration_id: str,
    platform: str,
    settings: CredentialSettings,
    clock: Clock | None,
) -> ResolvedCredential | None:
    with engine.connect() as conn:
        if wh.get_credential(conn, integration_id) is None:
            return None
    try:
        cipher = settings.cipher()
        if cipher is None:
            raise CredentialKeyError(
                f"integration {integration_id!r} has a credential in the encrypted store but "
                f"{KEY_ENV} is not set where this runs"
            )
        loaded = load_credential(engine, integration_id, cipher)
    except CredentialKeyError as exc:
        raise CredentialError(str(exc), ErrorClass.PERMANENT_CONFIG) from None
    if loaded is None:  # removed in between
        return None
    source = StoredTokenSource(
        engine,
        integration_id,
        platform,
        cipher,
        loaded,
        margin=dt.timedelta(seconds=settings.token_refresh_margin_s),
        **({"clock": clock} if clock is not None else {}),
    )
    return ResolvedCredential(loaded[0].access_token or Secret(""), STORE, source)


def _from_secrets_dir(name: str, settings: CredentialSettings) -> ResolvedCredential | None:
    path = settings.secret_file(name)
    if path is None or not path.is_file():
        return None
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeError) as exc:
        raise CredentialError(
            f"Cannot read the secret file {path}: {type(exc).__name__}",
            ErrorClass.PERMANENT_CONFIG,
        ) from None
    if not value:
        return None
    return ResolvedCredential(Secret(value), str(path))


def describe_credential(
    engine: sa.Engine,
    integration_id: str,
    platform: str,
    credential_env: str,
    settings: CredentialSettings,
    *,
    now: dt.datetime,
    environ: Mapping[str, str] | None = None,
) -> str:
    """One line for operators (`integrations list/verify/add`): where the credential of the
    integration would come from here and now, and what is due soon. Never raises for a missing
    or unreadable credential (the line says so) and never shows a secret."""
    with engine.connect() as conn:
        row = wh.get_credential(conn, integration_id)
    if row is not None:
        return _describe_stored(row, settings, now)
    try:
        resolved = resolve_credential(
            engine, integration_id, platform, credential_env, settings, environ=environ
        )
    except CredentialError as exc:
        return f"MISSING: {exc}"
    return f"from {resolved.source}"


def _describe_stored(
    row: wh.StoredCredential, settings: CredentialSettings, now: dt.datetime
) -> str:
    parts = [STORE]
    try:
        if settings.cipher() is None:
            parts.append(f"UNREADABLE here: {KEY_ENV} is not set")
    except CredentialKeyError as exc:
        parts.append(f"UNREADABLE here: {exc}")
    warn = dt.timedelta(days=settings.token_expiry_warn_days)
    if row.refresh_expires_at is not None:
        due = "EXPIRES SOON, re-authorize: " if row.refresh_expires_at - now <= warn else ""
        parts.append(f"{due}refresh token until {row.refresh_expires_at:%Y-%m-%d %H:%M} UTC")
    if row.access_expires_at is not None:
        parts.append(f"access token until {row.access_expires_at:%Y-%m-%d %H:%M} UTC")
    return "; ".join(parts)
