"""OAuth 2.0 refresh-token grants (RFC 6749 section 6) against a platform's token endpoint.

The X and LinkedIn clients build a `TokenExchange` with `token_exchange(...)` and hand it to the
account's `TokenSource`, which decides when to refresh and persists the result. This module
only speaks the wire, with the conventions of `ApiSession`:
- a connect and a read timeout on every request;
- secrets travel in the form body or the `Authorization: Basic` header, never in the URL; they
  are never logged, and every error message is redacted (the grant's own secrets included);
- ONE attempt, no retry: a refresh token may be single-use (X), and a reply lost after the
  platform spent it cannot be told from a request that never arrived. A failure that may pass
  (5xx, 429, timeout, connection error) is TRANSIENT, the stored token is left as it was, and
  the next run tries again; a refusal (`invalid_grant`, `invalid_client`, ...: 400/401) is
  PERMANENT_CREDENTIAL with the platform's reason: the integration needs re-authorization.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests

from analytics_pipeline.platforms.base import (
    IssuedTokens,
    PlatformError,
    RefreshGrant,
    Secret,
    TokenExchange,
)
from analytics_pipeline.platforms.http import RetryConfig, safe_url
from analytics_pipeline.platforms.redact import redact, redacting_logger
from analytics_pipeline.records import ErrorClass

__all__ = ["TokenEndpoint", "refresh_tokens", "token_exchange"]

logger = redacting_logger("analytics_pipeline.oauth")

ClientAuth = Literal["basic", "body"]
_REFUSALS = (400, 401, 403)


@dataclass(frozen=True)
class TokenEndpoint:
    """A platform's token endpoint. `client_auth`: where the client secret goes, "basic"
    (HTTP Basic `client_id:client_secret`, X's confidential clients; a public client without a
    secret sends `client_id` alone) or "body" (`client_id` and `client_secret` form fields,
    LinkedIn). `client_id` is sent in the body either way, as both platforms document."""

    platform: str
    url: str
    client_auth: ClientAuth


def token_exchange(
    endpoint: TokenEndpoint,
    retry: RetryConfig,
    *,
    http: requests.Session | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> TokenExchange:
    """The exchange function a client hands to its account's `TokenSource`."""
    return lambda grant: refresh_tokens(endpoint, grant, retry, http=http, clock=clock)


def refresh_tokens(
    endpoint: TokenEndpoint,
    grant: RefreshGrant,
    retry: RetryConfig,
    *,
    http: requests.Session | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> IssuedTokens:
    """POST the refresh grant; the issued tokens, or a classified, redacted `PlatformError`."""
    secrets = _secrets(grant)
    form, auth = _request_parts(endpoint, grant)
    issued_at = clock()
    try:
        response = (http or requests).post(
            endpoint.url,
            data=form,
            auth=auth,
            headers={"Accept": "application/json"},
            timeout=(retry.connect_timeout_s, retry.read_timeout_s),
        )
    except requests.RequestException as exc:
        # The exception's text may quote the request: only its type is kept.
        raise _error(endpoint, ErrorClass.TRANSIENT, f"{type(exc).__name__}", secrets) from None
    logger.info(
        "%s token refresh: POST %s -> HTTP %s",
        endpoint.platform,
        safe_url(endpoint.url),
        response.status_code,
    )
    return _parse(endpoint, response, issued_at, secrets)


def _request_parts(
    endpoint: TokenEndpoint, grant: RefreshGrant
) -> tuple[dict[str, str], tuple[str, str] | None]:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": grant.refresh_token.reveal(),
        "client_id": grant.client_id,
    }
    secret = grant.client_secret.reveal() if grant.client_secret else ""
    if secret and endpoint.client_auth == "basic":
        return form, (grant.client_id, secret)
    if secret:
        form["client_secret"] = secret
    return form, None


def _parse(
    endpoint: TokenEndpoint,
    response: requests.Response,
    issued_at: dt.datetime,
    secrets: tuple[str, ...],
) -> IssuedTokens:
    body = _json_object(response)
    status = response.status_code
    if status == 200 and body is not None and isinstance(body.get("access_token"), str):
        return _issued(body, issued_at)
    if status in _REFUSALS and body is not None and isinstance(body.get("error"), str):
        reason = body["error"]
        detail = body.get("error_description")
        text = f"{reason} ({detail})" if isinstance(detail, str) and detail else reason
        message = f"token refresh refused: {text}; re-authorize the integration"
        raise _error(endpoint, ErrorClass.PERMANENT_CREDENTIAL, message, secrets, code=reason)
    if status >= 500 or status in (408, 429):
        raise _error(endpoint, ErrorClass.TRANSIENT, f"HTTP {status}", secrets, status=status)
    if status in _REFUSALS:
        message = f"token refresh refused with HTTP {status}; re-authorize the integration"
        raise _error(endpoint, ErrorClass.PERMANENT_CREDENTIAL, message, secrets, status=status)
    message = f"unexpected token endpoint reply (HTTP {status})"
    raise _error(endpoint, ErrorClass.INVALID_RESPONSE, message, secrets, status=status)


def _issued(body: dict[str, Any], issued_at: dt.datetime) -> IssuedTokens:
    refresh = body.get("refresh_token")
    return IssuedTokens(
        access_token=Secret(body["access_token"]),
        issued_at=issued_at,
        expires_in=_seconds(body.get("expires_in")),
        refresh_token=Secret(refresh) if isinstance(refresh, str) and refresh else None,
        refresh_expires_in=_seconds(body.get("refresh_token_expires_in")),
    )


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


def _json_object(response: requests.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _secrets(grant: RefreshGrant) -> tuple[str, ...]:
    values = [grant.refresh_token.reveal()]
    if grant.client_secret:
        values.append(grant.client_secret.reveal())
    return tuple(values)


def _error(
    endpoint: TokenEndpoint,
    error_class: ErrorClass,
    problem: str,
    secrets: tuple[str, ...],
    *,
    code: str | None = None,
    status: int | None = None,
) -> PlatformError:
    text = f"{problem} on POST {safe_url(endpoint.url)}"
    return PlatformError(
        error_class,
        redact(text, secrets),
        platform=endpoint.platform,
        code=code,
        http_status=status,
    )
