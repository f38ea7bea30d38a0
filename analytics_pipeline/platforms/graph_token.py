"""Meta's `debug_token`, asked without putting the token in a URL.

Graph documents `GET /debug_token?input_token={token}`: the token being inspected travels in
the query string, where proxies and access logs keep it. The project never sends a token in a
URL, so the same read goes inside a Graph batch request (`POST /{version}/` with form field
`batch=[{"method":"GET","relative_url":"debug_token?input_token=..."}]`): the token is in the
POST body, the request line is `POST /v25.0/`. The caller's token authenticates the call in
the Authorization header, as every Graph call; Graph lets a token inspect itself ("the
access_token and input_token can be associated with different users but must be associated
with the same app").

The reply's `data` is parsed here into a frozen `TokenStatus`: `expires_at` (0 = never),
`data_access_expires_at`, `is_valid`, `scopes`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from analytics_pipeline.platforms.base import PlatformError, Secret, TokenStatus
from analytics_pipeline.platforms.graph import Ask, GraphApi, invalid_response

__all__ = ["parse_debug_token", "read_token_status"]

_KEY = "debug_token"


def read_token_status(api: GraphApi, token: Secret) -> TokenStatus:
    """ONE batch call with the `debug_token` read of `token` (a `null` or transient item is
    asked again like any batch item). Errors are the usual classified `PlatformError`s."""
    relative_url = f"{_KEY}?{urlencode({'input_token': token.reveal()})}"
    platform = api.platform.name
    ask: Ask[TokenStatus] = Ask(
        key=_KEY,
        url=lambda _metrics: relative_url,
        parse=lambda body: parse_debug_token(body, platform=platform),
    )
    result = api.run([ask])[_KEY]
    if isinstance(result, PlatformError):
        raise result
    return result


def parse_debug_token(body: Mapping[str, Any], *, platform: str) -> TokenStatus:
    """`{"data": {"is_valid": true, "expires_at": 0, "data_access_expires_at": ..., "scopes":
    [...]}}` as a `TokenStatus`; INVALID_RESPONSE when `data` or `is_valid` is missing."""
    data = body.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("is_valid"), bool):
        raise invalid_response(platform, "debug_token reply without data.is_valid")
    scopes = data.get("scopes")
    return TokenStatus(
        is_valid=data["is_valid"],
        expires_at=_moment(data.get("expires_at")),
        data_access_expires_at=_moment(data.get("data_access_expires_at")),
        scopes=tuple(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else (),
    )


def _moment(value: Any) -> dt.datetime | None:
    """An epoch-seconds limit; 0 (never), absent and malformed values are None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return dt.datetime.fromtimestamp(value, dt.UTC)
