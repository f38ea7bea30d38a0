"""The sandbox's OAuth token endpoints for X and LinkedIn over real HTTP (wire formats,
single-use X refresh tokens, LinkedIn's non-extending refresh tokens, revocation, expiring
access tokens), and the client side of a refresh grant (`platforms.oauth`) against scripted
replies: where the secrets go, how failures are classified, that nothing leaks."""

from __future__ import annotations

import base64
import datetime as dt
import logging

import pytest
import requests

from analytics_pipeline.platforms.base import RefreshGrant, Secret
from analytics_pipeline.platforms.http import RetryConfig
from analytics_pipeline.platforms.oauth import TokenEndpoint, refresh_tokens
from analytics_pipeline.records import ErrorClass
from analytics_pipeline_tests.fakes import Reply, scripted_session
from analytics_sandbox import FixedClock, SandboxConfig, SandboxServer

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
CONFIG = SandboxConfig(posts_per_day=(2, 6))
TOKEN = "unused-module-token"
CLIENT_ID = "client-1"
CLIENT_SECRET = "client-secret-0f9a2b"
REFRESH = "refresh-token-value-c81d"
X_TWEETS = "/2/users/3000001/tweets?max_results=5"


def _x_refresh(sandbox: SandboxServer, refresh: str) -> requests.Response:
    return requests.post(
        f"{sandbox.base_url}/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )


def _li_refresh(
    sandbox: SandboxServer, refresh: str, secret: str = CLIENT_SECRET
) -> requests.Response:
    return requests.post(
        f"{sandbox.base_url}/oauth/v2/accessToken",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": CLIENT_ID,
            "client_secret": secret,
        },
        timeout=10,
    )


def _get(sandbox: SandboxServer, path: str, token: str, **headers: str) -> requests.Response:
    return requests.get(
        f"{sandbox.base_url}{path}",
        headers={"Authorization": f"Bearer {token}", **headers},
        timeout=10,
    )


def test_the_admin_grant_issues_x_tokens(sandbox: SandboxServer) -> None:
    reply = requests.post(
        f"{sandbox.base_url}/_sandbox/oauth/grant",
        json={"platform": "x", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        timeout=10,
    )
    body = reply.json()
    assert reply.status_code == 200
    assert set(body) == {"access_token", "refresh_token", "expires_in", "scope", "token_type"}
    assert body["expires_in"] == 7200 and "offline.access" in body["scope"]
    assert _get(sandbox, X_TWEETS, body["access_token"]).status_code == 200


def test_x_refresh_tokens_are_single_use(sandbox: SandboxServer, clock: FixedClock) -> None:
    issued = sandbox.state.tokens.grant("x", CLIENT_ID, CLIENT_SECRET, clock())
    first = _x_refresh(sandbox, issued["refresh_token"])
    assert first.status_code == 200 and first.headers["cache-control"] == "no-store"
    renewed = first.json()
    assert renewed["refresh_token"] != issued["refresh_token"]
    again = _x_refresh(sandbox, issued["refresh_token"])
    assert (again.status_code, again.json()) == (
        400,
        {
            "error": "invalid_request",
            "error_description": "Value passed for the token was invalid.",
        },
    )
    assert _x_refresh(sandbox, renewed["refresh_token"]).status_code == 200
    assert sandbox.state.tokens.refresh_count("x") == 2


def test_x_confidential_clients_must_authenticate(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    issued = sandbox.state.tokens.grant("x", CLIENT_ID, CLIENT_SECRET, clock())
    reply = requests.post(
        f"{sandbox.base_url}/2/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": issued["refresh_token"],
            "client_id": CLIENT_ID,
        },
        timeout=10,
    )
    assert reply.status_code == 401 and reply.json()["error"] == "unauthorized_client"
    assert sandbox.state.tokens.refresh_count("x") == 0


def test_x_access_tokens_expire_and_revoke(sandbox: SandboxServer, clock: FixedClock) -> None:
    issued = sandbox.state.tokens.grant("x", CLIENT_ID, CLIENT_SECRET, clock(), access_ttl_s=60)
    assert _get(sandbox, X_TWEETS, issued["access_token"]).status_code == 200
    clock.advance(dt.timedelta(seconds=60))
    assert _get(sandbox, X_TWEETS, issued["access_token"]).status_code == 401
    renewed = _x_refresh(sandbox, issued["refresh_token"]).json()
    assert _get(sandbox, X_TWEETS, renewed["access_token"]).status_code == 200
    revoke = requests.post(
        f"{sandbox.base_url}/2/oauth2/revoke",
        data={"token": renewed["access_token"], "client_id": CLIENT_ID},
        timeout=10,
    )
    assert revoke.json() == {"revoked": True}
    assert _get(sandbox, X_TWEETS, renewed["access_token"]).status_code == 401
    assert _get(sandbox, X_TWEETS, "sbx-x-at-never-issued").status_code == 401
    assert _get(sandbox, X_TWEETS, "any-fixture-token").status_code == 200  # not sandbox-issued


def test_linkedin_refresh_keeps_the_refresh_token_and_counts_down(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    issued = sandbox.state.tokens.grant("linkedin", CLIENT_ID, CLIENT_SECRET, clock())
    assert issued["expires_in"] == 60 * 86_400
    assert issued["refresh_token_expires_in"] == 365 * 86_400
    clock.advance(dt.timedelta(days=59))
    renewed = _li_refresh(sandbox, issued["refresh_token"]).json()
    assert renewed["refresh_token"] == issued["refresh_token"]
    assert renewed["refresh_token_expires_in"] == 306 * 86_400  # 365 - 59: it does not restart
    assert renewed["access_token"] != issued["access_token"]
    clock.advance(dt.timedelta(days=307))
    expired = _li_refresh(sandbox, issued["refresh_token"])
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"


def test_linkedin_checks_the_client_secret_and_revocation(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    issued = sandbox.state.tokens.grant("linkedin", CLIENT_ID, CLIENT_SECRET, clock())
    wrong = _li_refresh(sandbox, issued["refresh_token"], secret="wrong-secret")
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    path = "/rest/posts?author=urn%3Ali%3Aorganization%3A2000001&q=author"
    headers = {"LinkedIn-Version": "202609", "X-Restli-Protocol-Version": "2.0.0"}
    assert _get(sandbox, path, issued["access_token"], **headers).status_code == 200
    requests.post(
        f"{sandbox.base_url}/oauth/v2/revoke",
        data={
            "token": issued["access_token"],
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
        timeout=10,
    )
    revoked = _get(sandbox, path, issued["access_token"], **headers)
    assert revoked.status_code == 401 and revoked.json()["code"] == "REVOKED_ACCESS_TOKEN"


def test_the_request_log_never_holds_a_token(sandbox: SandboxServer, clock: FixedClock) -> None:
    issued = sandbox.state.tokens.grant("x", CLIENT_ID, CLIENT_SECRET, clock())
    _x_refresh(sandbox, issued["refresh_token"])
    log = repr([record.to_dict() for record in sandbox.requests()])
    assert issued["refresh_token"] not in log and CLIENT_SECRET not in log


# --- the client side of a refresh grant -----------------------------------------------------------

ENDPOINT_X = TokenEndpoint("x", "https://api.x.com/2/oauth2/token", "basic")
ENDPOINT_LI = TokenEndpoint("linkedin", "https://www.linkedin.com/oauth/v2/accessToken", "body")
GRANT = RefreshGrant(Secret(REFRESH), CLIENT_ID, Secret(CLIENT_SECRET))
OK = Reply(
    200,
    {
        "access_token": "new-access-token-7d1e",
        "expires_in": 7200,
        "refresh_token": "new-refresh-token-2a90",
    },
)


def test_x_sends_basic_auth_and_linkedin_the_secret_in_the_body() -> None:
    session, adapter = scripted_session(OK, OK)
    issued = refresh_tokens(ENDPOINT_X, GRANT, RetryConfig(), http=session, clock=lambda: NOW)
    assert issued.access_token.reveal() == "new-access-token-7d1e"
    assert issued.refresh_token is not None and issued.expires_in == 7200
    x_request = adapter.requests[0]
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert x_request.headers["Authorization"] == f"Basic {basic}"
    assert (
        x_request.body == f"grant_type=refresh_token&refresh_token={REFRESH}&client_id={CLIENT_ID}"
    )
    assert x_request.url == ENDPOINT_X.url  # nothing in the URL
    refresh_tokens(ENDPOINT_LI, GRANT, RetryConfig(), http=session, clock=lambda: NOW)
    li_request = adapter.requests[1]
    assert "Authorization" not in li_request.headers
    assert f"client_secret={CLIENT_SECRET}" in str(li_request.body)
    assert adapter.timeouts == [(5.0, 30.0)] * 2


@pytest.mark.parametrize(
    ("reply", "error_class"),
    [
        (Reply(503, text="<html>down</html>"), ErrorClass.TRANSIENT),
        (Reply(429, {"error": "rate"}), ErrorClass.TRANSIENT),
        (requests.ConnectionError(f"refused, body had {REFRESH}"), ErrorClass.TRANSIENT),
        (requests.ReadTimeout("read timed out"), ErrorClass.TRANSIENT),
        (
            Reply(400, {"error": "invalid_grant", "error_description": f"bad {REFRESH}"}),
            ErrorClass.PERMANENT_CREDENTIAL,
        ),
        (Reply(401, text="no"), ErrorClass.PERMANENT_CREDENTIAL),
        (Reply(200, {"no": "token"}), ErrorClass.INVALID_RESPONSE),
    ],
)
def test_failures_are_classified_once_and_redacted(
    reply: Reply | Exception, error_class: ErrorClass, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    session, adapter = scripted_session(reply)  # one step: a retry would fail the script
    with pytest.raises(Exception) as caught:
        refresh_tokens(ENDPOINT_X, GRANT, RetryConfig(), http=session, clock=lambda: NOW)
    error = caught.value
    assert getattr(error, "error_class", None) is error_class
    assert len(adapter.requests) == 1
    text = str(error) + repr(error) + caplog.text
    assert REFRESH not in text and CLIENT_SECRET not in text
