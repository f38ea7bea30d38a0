"""OAuth 2.0 tokens for the sandbox's X and LinkedIn: issue, check, refresh, revoke.

Tokens the sandbox issues start with `sbx-<platform>-at-` (access) or `sbx-<platform>-rt-`
(refresh). The X and LinkedIn routes check such a bearer token against this authority (unknown,
expired or revoked -> 401); any other bearer token is accepted as before, so fixtures that use a
fixed token keep working.

Wire formats, as the platforms document them:
- X `POST /2/oauth2/token` (form: grant_type=refresh_token, refresh_token, client_id; a
  confidential client authenticates with HTTP Basic client_id:client_secret) -> `{"token_type":
  "bearer", "expires_in": 7200, "access_token", "scope", "refresh_token"}`. The refresh token is
  SINGLE-USE: each refresh issues a new one and the spent one answers 400 `invalid_request`
  ("Value passed for the token was invalid."). `POST /2/oauth2/revoke` (token, client_id).
- LinkedIn `POST /oauth/v2/accessToken` (form: grant_type=refresh_token, refresh_token,
  client_id, client_secret) -> `{"access_token", "expires_in", "refresh_token",
  "refresh_token_expires_in", "scope"}`: the SAME refresh token, whose lifetime does not restart
  (365 days from the first authorization). Expired or revoked -> 400 `invalid_grant`.
  `POST /oauth/v2/revoke` (token, client_id, client_secret).
- Bad client credentials -> 401 `invalid_client` (LinkedIn) / `unauthorized_client` (X).

Admin: `POST /_sandbox/oauth/grant` `{"platform", "client_id", "client_secret"?,
"access_ttl_s"?, "refresh_ttl_s"?}` stands for a completed authorization-code flow and answers
the token response (never logged). `refresh_count(platform)` counts successful refreshes.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from analytics_sandbox.common import CallStart, Outcome, sandbox_call
from analytics_sandbox.state import get_state
from analytics_sandbox.tokens import OAuthError


def _basic_auth(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(value.strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


# --- routes ---------------------------------------------------------------------------------


def routes() -> list[BaseRoute]:
    return [
        Route("/2/oauth2/token", _endpoint("x", _token), methods=["POST"]),
        Route("/2/oauth2/revoke", _endpoint("x", _revoke), methods=["POST"]),
        Route("/oauth/v2/accessToken", _endpoint("linkedin", _token), methods=["POST"]),
        Route("/oauth/v2/revoke", _endpoint("linkedin", _revoke), methods=["POST"]),
        Route("/_sandbox/oauth/grant", _admin_grant, methods=["POST"]),
    ]


def _endpoint(platform: str, handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))

        def answer(call: CallStart) -> Outcome:
            return handler(platform, request, form, call)

        # Secrets in a form body are normal here; the log records parameter names only.
        return await sandbox_call(request, answer, page_ids=(), token_params=("access_token",))

    return endpoint


def _token(platform: str, request: Request, form: dict[str, str], call: CallStart) -> Outcome:
    authority = call.state.tokens
    try:
        body = authority.refresh(platform, form, _basic_auth(request), call.now)
    except OAuthError as err:
        return Outcome(JSONResponse(err.body, err.status), fault=err.body["error"])
    return Outcome(JSONResponse(body, headers={"Cache-Control": "no-store"}))


def _revoke(platform: str, request: Request, form: dict[str, str], call: CallStart) -> Outcome:
    call.state.tokens.revoke(platform, form.get("token", ""))
    body: dict[str, Any] = {"revoked": True} if platform == "x" else {}
    return Outcome(JSONResponse(body))


async def _admin_grant(request: Request) -> JSONResponse:
    state = get_state(request.app)
    try:
        spec = json.loads(await request.body() or b"{}")
        if not isinstance(spec, dict):
            raise ValueError("the body must be a JSON object")
        body = state.tokens.grant(
            str(spec.get("platform")),
            str(spec["client_id"]),
            spec.get("client_secret"),
            state.clock(),
            access_ttl_s=spec.get("access_ttl_s"),
            refresh_ttl_s=spec.get("refresh_ttl_s"),
        )
    except (KeyError, ValueError) as err:
        return JSONResponse({"error": str(err)}, status_code=400)
    return JSONResponse(body)
