"""The encrypted credential store, seen from the pipeline: save, load, refresh, rotate.

`StoredTokenSource` is the `TokenSource` of an integration whose credential is in the store. A
refresh runs inside ONE warehouse transaction holding the credential's row lock
(`warehouse.lock_credential`): the row is re-read after the lock is granted, and when another
process refreshed in the meantime its token is used and no refresh token is spent (X refresh
tokens are single-use). The new tokens are written in the same transaction. A refused refresh
marks the integration needs_reauth with the platform's reason, in that transaction too.

The lock is held during the token request (its timeouts bound it). On SQLite it is the
database's write lock: other writers wait (busy timeout 30 s) while a refresh is in flight.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.credentials.bundle import CredentialBundle
from analytics_pipeline.credentials.crypto import CredentialCipher, CredentialKeyError
from analytics_pipeline.platforms.base import (
    IssuedTokens,
    PlatformError,
    Secret,
    TokenExchange,
)
from analytics_pipeline.platforms.redact import redact, redacting_logger
from analytics_pipeline.records import ErrorClass, IntegrationStatus

logger = redacting_logger("analytics_pipeline.credentials")

Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Expiry:
    """When the stored tokens expire (None: unknown / never said)."""

    access: dt.datetime | None = None
    refresh: dt.datetime | None = None


def save_credential(
    engine: sa.Engine,
    integration_id: str,
    update: CredentialBundle,
    cipher: CredentialCipher,
    expiry: Expiry,
    now: dt.datetime,
) -> CredentialBundle:
    """Store `update` merged into the integration's stored credential (a field `update` does not
    set keeps its stored value; a new access token without a lifetime has an unknown expiry)."""
    what = f"The stored credential of {integration_id!r}"
    with engine.begin() as conn:
        row = wh.lock_credential(conn, integration_id)
        current = CredentialBundle()
        access_expires, refresh_expires = expiry.access, expiry.refresh
        if row is not None:
            current = CredentialBundle.from_json(cipher.decrypt(row.ciphertext, what))
            if update.access_token is None:
                access_expires = access_expires or row.access_expires_at
            if update.refresh_token is None:
                refresh_expires = refresh_expires or row.refresh_expires_at
        bundle = current.merged(update)
        wh.put_credential(
            conn,
            integration_id,
            ciphertext=cipher.encrypt(bundle.to_json()),
            access_expires_at=access_expires,
            refresh_expires_at=refresh_expires,
            now=now,
        )
    return bundle


def load_credential(
    engine: sa.Engine, integration_id: str, cipher: CredentialCipher
) -> tuple[CredentialBundle, wh.StoredCredential] | None:
    """The decrypted credential and its row, or None when the store has none."""
    with engine.connect() as conn:
        row = wh.get_credential(conn, integration_id)
    if row is None:
        return None
    what = f"The stored credential of {integration_id!r}"
    return CredentialBundle.from_json(cipher.decrypt(row.ciphertext, what)), row


def rotate_key(engine: sa.Engine, cipher: CredentialCipher) -> int:
    """Re-encrypt every stored credential with the newest key (one transaction); the number
    of rows. CredentialKeyError names the first row no key decrypts (nothing is changed)."""
    with engine.begin() as conn:
        rows = wh.lock_all_credentials(conn)
        for row in rows:
            what = f"The stored credential of {row.integration_id!r}"
            wh.replace_ciphertext(conn, row.integration_id, cipher.rotate(row.ciphertext, what))
    return len(rows)


class StoredTokenSource:
    """The `TokenSource` of one integration whose credential is in the encrypted store."""

    def __init__(
        self,
        engine: sa.Engine,
        integration_id: str,
        platform: str,
        cipher: CredentialCipher,
        loaded: tuple[CredentialBundle, wh.StoredCredential],
        *,
        margin: dt.timedelta = dt.timedelta(minutes=5),
        clock: Clock = _utc_now,
    ) -> None:
        self._engine = engine
        self._integration_id = integration_id
        self._platform = platform
        self._cipher = cipher
        self._bundle, self._row = loaded
        self._margin = margin
        self._clock = clock
        self.refreshes = 0  # refresh grants THIS source spent

    def __repr__(self) -> str:
        return f"StoredTokenSource({self._integration_id!r})"

    def current(self, exchange: TokenExchange | None) -> Secret:
        bundle = self._bundle
        if bundle.access_token and not self._expiring(self._row):
            return bundle.access_token
        if exchange is None or not bundle.refreshable:
            if bundle.access_token:
                return bundle.access_token  # the platform will say whether it still works
            raise self._error(
                "its stored credential has no access token and cannot be refreshed (no "
                "refresh token or client id); set one with `analytics-pipeline integrations "
                "set-credential`"
            )
        return self._refresh(bundle.access_token, exchange)

    def renew(self, rejected: Secret, exchange: TokenExchange | None) -> Secret | None:
        if exchange is None or not self._bundle.refreshable:
            return None
        return self._refresh(rejected, exchange)

    # -- the locked refresh --------------------------------------------------------------------

    def _refresh(self, stale: Secret | None, exchange: TokenExchange) -> Secret:
        failure: PlatformError | None = None
        with self._engine.begin() as conn:
            row = wh.lock_credential(conn, self._integration_id)
            if row is None:
                raise self._error("its stored credential was removed during the run")
            bundle = self._decrypt(row)
            if self._usable(bundle, row, stale):
                self._bundle, self._row = bundle, row
                assert bundle.access_token is not None
                return bundle.access_token
            try:
                issued = exchange(bundle.grant())
            except PlatformError as error:
                failure = error
                if error.error_class is ErrorClass.PERMANENT_CREDENTIAL:
                    self._mark_needs_reauth(conn, error)
            else:
                self._bundle, self._row = self._persist(conn, bundle, row, issued)
        if failure is not None:
            raise failure
        self.refreshes += 1
        logger.info(
            "%s access token of integration %s refreshed (expires %s)",
            self._platform,
            self._integration_id,
            self._row.access_expires_at.isoformat() if self._row.access_expires_at else "?",
        )
        assert self._bundle.access_token is not None
        return self._bundle.access_token

    def _usable(
        self, bundle: CredentialBundle, row: wh.StoredCredential, stale: Secret | None
    ) -> bool:
        """The stored token differs from the one that failed or expires, and is fresh:
        another process refreshed it."""
        if bundle.access_token is None or self._expiring(row):
            return False
        return stale is None or bundle.access_token.reveal() != stale.reveal()

    def _persist(
        self,
        conn: sa.Connection,
        bundle: CredentialBundle,
        row: wh.StoredCredential,
        issued: IssuedTokens,
    ) -> tuple[CredentialBundle, wh.StoredCredential]:
        new = bundle.with_issued(issued)
        stored = wh.put_credential(
            conn,
            self._integration_id,
            ciphertext=self._cipher.encrypt(new.to_json()),
            access_expires_at=_after(issued.issued_at, issued.expires_in),
            refresh_expires_at=(
                _after(issued.issued_at, issued.refresh_expires_in) or row.refresh_expires_at
            ),
            now=self._clock(),
            refreshed=True,
        )
        return new, stored

    def _mark_needs_reauth(self, conn: sa.Connection, error: PlatformError) -> None:
        with contextlib.suppress(wh.UnknownIntegrationError):  # removed meanwhile
            wh.set_integration_status(
                conn,
                self._integration_id,
                IntegrationStatus.NEEDS_REAUTH,
                redact(str(error)),
                self._clock(),
            )

    def _decrypt(self, row: wh.StoredCredential) -> CredentialBundle:
        what = f"The stored credential of {self._integration_id!r}"
        try:
            return CredentialBundle.from_json(self._cipher.decrypt(row.ciphertext, what))
        except CredentialKeyError as exc:
            raise PlatformError(
                ErrorClass.PERMANENT_CONFIG, str(exc), platform=self._platform
            ) from None

    def _expiring(self, row: wh.StoredCredential) -> bool:
        expires = row.access_expires_at
        return expires is not None and expires - self._margin <= self._clock()

    def _error(self, problem: str) -> PlatformError:
        return PlatformError(
            ErrorClass.PERMANENT_CREDENTIAL,
            f"Integration {self._integration_id!r}: {problem}.",
            platform=self._platform,
        )


def _after(start: dt.datetime, seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else start + dt.timedelta(seconds=seconds)
