"""The sandbox's OAuth 2.0 token registry for X and LinkedIn (see `oauth.py` for the wire).

Kept apart from the routes so that `state.py` can hold one without importing Starlette routes.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PLATFORMS = ("x", "linkedin")
DEFAULT_ACCESS_TTL_S = {"x": 7200, "linkedin": 60 * 86_400}
DEFAULT_REFRESH_TTL_S = {"x": 180 * 86_400, "linkedin": 365 * 86_400}
_SCOPES = {"x": "tweet.read users.read offline.access", "linkedin": "r_organization_social"}
_PREFIX = "sbx-"


@dataclass
class _Client:
    client_id: str
    client_secret: str | None


@dataclass
class _Refresh:
    platform: str
    client_id: str
    expires_at: dt.datetime
    access_ttl_s: int
    active: bool = True


@dataclass
class _Access:
    platform: str
    expires_at: dt.datetime
    revoked: bool = False


class OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(error)
        self.status = status
        self.body = {"error": error, "error_description": description}


class TokenAuthority:
    """The sandbox's token registry (thread-safe; token values never leave it but in replies)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every client and token (the sandbox's reset)."""
        with self._lock:
            self._clients: dict[tuple[str, str], _Client] = {}
            self._refresh: dict[str, _Refresh] = {}
            self._access: dict[str, _Access] = {}
            self._refreshes: dict[str, int] = dict.fromkeys(PLATFORMS, 0)

    # -- issuing -----------------------------------------------------------------------------

    def grant(
        self,
        platform: str,
        client_id: str,
        client_secret: str | None,
        now: dt.datetime,
        *,
        access_ttl_s: int | None = None,
        refresh_ttl_s: int | None = None,
    ) -> dict[str, Any]:
        """The token response of a completed authorization (registers the client)."""
        if platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {PLATFORMS}")
        access_ttl = access_ttl_s or DEFAULT_ACCESS_TTL_S[platform]
        refresh_ttl = refresh_ttl_s or DEFAULT_REFRESH_TTL_S[platform]
        with self._lock:
            self._clients[(platform, client_id)] = _Client(client_id, client_secret)
            refresh = self._new_token(platform, "rt")
            self._refresh[refresh] = _Refresh(
                platform, client_id, now + dt.timedelta(seconds=refresh_ttl), access_ttl
            )
            return self._issue(platform, refresh, now)

    def _issue(self, platform: str, refresh: str, now: dt.datetime) -> dict[str, Any]:
        record = self._refresh[refresh]
        access = self._new_token(platform, "at")
        self._access[access] = _Access(platform, now + dt.timedelta(seconds=record.access_ttl_s))
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": record.access_ttl_s,
            "refresh_token": refresh,
            "scope": _SCOPES[platform],
        }
        if platform == "x":
            body["token_type"] = "bearer"  # noqa: S105 (a token type, not a secret)
        else:
            remaining = int((record.expires_at - now).total_seconds())
            body["refresh_token_expires_in"] = max(0, remaining)
        return body

    @staticmethod
    def _new_token(platform: str, kind: str) -> str:
        return f"{_PREFIX}{platform}-{kind}-{secrets.token_urlsafe(24)}"

    # -- checking ----------------------------------------------------------------------------

    def check_access(self, platform: str, token: str, now: dt.datetime) -> str | None:
        """None when `token` may be used (or is not one the sandbox issued), else why not:
        "unknown", "expired" or "revoked"."""
        if not token.startswith(_PREFIX):
            return None
        with self._lock:
            record = self._access.get(token)
        if record is None or record.platform != platform:
            return "unknown"
        if record.revoked:
            return "revoked"
        return "expired" if now >= record.expires_at else None

    def expire_access_tokens(self, platform: str, now: dt.datetime) -> None:
        """Every issued access token of `platform` expires at `now` (tests)."""
        with self._lock:
            for record in self._access.values():
                if record.platform == platform:
                    record.expires_at = min(record.expires_at, now)

    def refresh_count(self, platform: str) -> int:
        with self._lock:
            return self._refreshes[platform]

    # -- the token endpoint --------------------------------------------------------------------

    def refresh(
        self,
        platform: str,
        form: Mapping[str, str],
        basic: tuple[str, str] | None,
        now: dt.datetime,
    ) -> dict[str, Any]:
        """A refresh-token grant; raises OAuthError with the platform's status and body."""
        if form.get("grant_type") != "refresh_token":
            raise OAuthError(400, "unsupported_grant_type", "grant_type must be refresh_token")
        client_id = (basic[0] if basic else None) or form.get("client_id", "")
        with self._lock:
            self._authenticate(platform, client_id, form, basic)
            token = form.get("refresh_token", "")
            record = self._refresh.get(token)
            usable = (
                record is not None
                and record.active
                and record.platform == platform
                and record.client_id == client_id
                and now < record.expires_at
            )
            if not usable:
                raise _invalid_refresh(platform)
            assert record is not None
            if platform == "x":  # single-use: spend it, issue a new one with the same lifetime
                record.active = False
                token = self._new_token(platform, "rt")
                self._refresh[token] = _Refresh(
                    platform, client_id, record.expires_at, record.access_ttl_s
                )
            self._refreshes[platform] += 1
            return self._issue(platform, token, now)

    def _authenticate(
        self,
        platform: str,
        client_id: str,
        form: Mapping[str, str],
        basic: tuple[str, str] | None,
    ) -> None:
        client = self._clients.get((platform, client_id))
        if platform == "x":
            sent_secret = basic[1] if basic else None
            ok = client is not None and (
                client.client_secret is None or sent_secret == client.client_secret
            )
            if not ok:
                raise OAuthError(401, "unauthorized_client", "Missing valid authorization header")
            return
        if client is None or form.get("client_secret") != client.client_secret:
            raise OAuthError(401, "invalid_client", "Client authentication failed")

    def revoke(self, platform: str, token: str) -> None:
        """Revoke an access or refresh token (unknown tokens are ignored, as RFC 7009 says)."""
        with self._lock:
            if token in self._access and self._access[token].platform == platform:
                self._access[token].revoked = True
            if token in self._refresh and self._refresh[token].platform == platform:
                self._refresh[token].active = False


def _invalid_refresh(platform: str) -> OAuthError:
    if platform == "x":
        return OAuthError(400, "invalid_request", "Value passed for the token was invalid.")
    return OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
