"""OAuth 2.0 refresh for X and LinkedIn, end to end over HTTP against the sandbox's token
endpoints, with the credential in the encrypted store (SQLite and PostgreSQL): refresh before
expiry, once on a 401, atomic persistence, single-use X refresh tokens spent exactly once by
two concurrent runs, a refused refresh marking the integration needs_reauth, and no secret in
logs, exceptions or tables."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from cryptography.fernet import Fernet

from analytics_pipeline import credentials as cr
from analytics_pipeline import warehouse as wh
from analytics_pipeline.ingest import IngestOptions, IntegrationRequest, Status, ingest_integration
from analytics_pipeline.platforms import create_client
from analytics_pipeline.platforms.base import Account, PlatformClient, PlatformError, Secret
from analytics_pipeline.platforms.linkedin import LinkedInClient, LinkedInSettings
from analytics_pipeline.platforms.x import XClient, XSettings
from analytics_pipeline.records import ErrorClass
from analytics_pipeline.warehouse.tables import integration_credentials, tracked_integrations
from analytics_sandbox import FixedClock, SandboxConfig, SandboxServer

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)  # ingestion's sources use the real clock
DAY = NOW.date() - dt.timedelta(days=1)
CONFIG = SandboxConfig(posts_per_day=(2, 6))
TOKEN = "unused-module-token"
KEY = Fernet.generate_key().decode()
CLIENT_ID = "sandbox-client-1"
CLIENT_SECRET = "sandbox-client-secret-9c1e"
X_USER = "3000001"
ORG_URN = "urn:li:organization:2000001"
INTEGRATIONS = {"x": ("acme-x", X_USER), "linkedin": ("acme-li", ORG_URN)}


# --- helpers -------------------------------------------------------------------------------------


def _add(engine: sa.Engine, platform: str) -> str:
    iid, account_id = INTEGRATIONS[platform]
    with engine.begin() as conn:
        wh.add_integration(
            conn,
            organization_id="acme",
            integration_id=iid,
            platform=platform,
            external_account_id=account_id,
            display_name=iid,
            credential_env=f"{iid.upper().replace('-', '_')}_TOKEN",
            now=NOW,
        )
    return iid


def _authorize(
    engine: sa.Engine, sandbox: SandboxServer, clock: FixedClock, platform: str
) -> tuple[str, dict[str, Any]]:
    """The integration, and the tokens of a completed authorization, stored encrypted."""
    iid = _add(engine, platform)
    issued = sandbox.state.tokens.grant(platform, CLIENT_ID, CLIENT_SECRET, clock())
    bundle = cr.CredentialBundle(
        access_token=Secret(issued["access_token"]),
        refresh_token=Secret(issued["refresh_token"]),
        client_id=CLIENT_ID,
        client_secret=Secret(CLIENT_SECRET),
    )
    expiry = cr.Expiry(access=clock() + dt.timedelta(seconds=issued["expires_in"]))
    cr.save_credential(engine, iid, bundle, cr.parse_keys(KEY), expiry, clock())
    return iid, issued


def _account(engine: sa.Engine, platform: str, clock: FixedClock) -> Account:
    iid, account_id = INTEGRATIONS[platform]
    settings = cr.CredentialSettings.model_validate({"credentials_key": KEY})
    resolved = cr.resolve_credential(
        engine, iid, platform, "UNUSED_TOKEN", settings, environ={}, clock=clock
    )
    return Account("acme", iid, platform, account_id, resolved.token, resolved.token_source)


def _client(sandbox: SandboxServer, account: Account, clock: FixedClock) -> PlatformClient:
    if account.platform == "x":
        return XClient(XSettings(base_url=sandbox.base_url), account, clock=clock)
    settings = LinkedInSettings(base_url=sandbox.base_url, oauth_base_url=sandbox.base_url)
    return LinkedInClient(settings, account, clock=clock)


def _stored(engine: sa.Engine, iid: str) -> tuple[cr.CredentialBundle, wh.StoredCredential]:
    loaded = cr.load_credential(engine, iid, cr.parse_keys(KEY))
    assert loaded is not None
    return loaded


def _token_requests(sandbox: SandboxServer) -> list[Any]:
    return [r for r in sandbox.requests() if r.path in ("/2/oauth2/token", "/oauth/v2/accessToken")]


def _all_text(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        rows = [
            *conn.execute(sa.select(integration_credentials)).all(),
            *conn.execute(sa.select(tracked_integrations)).all(),
        ]
    return repr(rows)


def _assert_hidden(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text


# --- X -------------------------------------------------------------------------------------------


def test_x_refreshes_an_expired_token_before_the_request_and_persists_the_new_pair(
    engine: sa.Engine, sandbox: SandboxServer, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    iid, issued = _authorize(engine, sandbox, clock, "x")
    clock.advance(dt.timedelta(hours=2))  # X access tokens live 2 hours
    client = _client(sandbox, _account(engine, "x", clock), clock)

    assert list(client.list_content(DAY))

    assert sandbox.state.tokens.refresh_count("x") == 1
    bundle, row = _stored(engine, iid)
    assert bundle.refresh_token is not None and bundle.access_token is not None
    assert bundle.refresh_token.reveal() != issued["refresh_token"]  # rotated
    assert sandbox.state.tokens.check_access("x", bundle.access_token.reveal(), clock()) is None
    assert row.version == 2 and row.refreshed_at == clock()
    assert row.access_expires_at == clock() + dt.timedelta(hours=2)
    (token_call,) = _token_requests(sandbox)
    assert token_call.status == 200 and not token_call.access_token_in_query
    api_calls = [r for r in sandbox.requests() if r.path.startswith("/2/users/")]
    assert api_calls and all(r.status == 200 for r in api_calls)  # no 401 first
    # The spent refresh token is dead (X refresh tokens are single-use).
    spent = requests.post(
        f"{sandbox.base_url}/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=10,
    )
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_request"
    _assert_hidden(
        caplog.text + _all_text(engine),
        issued["refresh_token"],
        bundle.refresh_token.reveal(),
        bundle.access_token.reveal(),
        CLIENT_SECRET,
    )


def test_x_refreshes_once_on_a_401_and_retries_the_request(
    engine: sa.Engine, sandbox: SandboxServer, clock: FixedClock
) -> None:
    """The token looks fresh by its expiry time, but the platform revoked it."""
    _iid, issued = _authorize(engine, sandbox, clock, "x")
    sandbox.state.tokens.revoke("x", issued["access_token"])
    client = _client(sandbox, _account(engine, "x", clock), clock)

    assert list(client.list_content(DAY))

    assert sandbox.state.tokens.refresh_count("x") == 1
    statuses = [r.status for r in sandbox.requests()]
    assert statuses[:3] == [401, 200, 200]  # the rejected call, the refresh, the same call


def test_a_second_401_after_a_refresh_is_not_refreshed_again(
    engine: sa.Engine, sandbox: SandboxServer, clock: FixedClock
) -> None:
    _authorize(engine, sandbox, clock, "x")
    sandbox.faults.expire_token(X_USER)  # every call for this user answers 401
    client = _client(sandbox, _account(engine, "x", clock), clock)
    with pytest.raises(PlatformError) as caught:
        list(client.list_content(DAY))
    assert caught.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert sandbox.state.tokens.refresh_count("x") == 1
    assert [r.status for r in sandbox.requests()] == [401, 200, 401]


def test_two_runs_refreshing_at_once_spend_the_single_use_refresh_token_once(
    engine: sa.Engine, warehouse_url: str, sandbox: SandboxServer, clock: FixedClock
) -> None:
    """Two workers (own engines, own connections, as two processes) find the token expired at
    the same moment: the row lock lets one refresh; the other re-reads and uses its token."""
    iid, _issued = _authorize(engine, sandbox, clock, "x")
    clock.advance(dt.timedelta(hours=3))
    sandbox.faults.latency_ms = 300  # the first refresh is still in flight when the second asks
    engines = [wh.make_engine(warehouse_url) for _ in range(2)]
    barrier = threading.Barrier(2)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def worker(own: sa.Engine) -> None:
        try:
            client = _client(sandbox, _account(own, "x", clock), clock)
            barrier.wait(timeout=30)
            list(client.list_content(DAY))
            tokens.append(client.account.current_token(None).reveal())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(own,)) for own in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)  # a hang guard, not a timing assertion
    finally:
        for own in engines:
            own.dispose()
    assert errors == []
    assert sandbox.state.tokens.refresh_count("x") == 1
    assert len(_token_requests(sandbox)) == 1
    assert len(tokens) == 2 and tokens[0] == tokens[1]
    assert sandbox.state.tokens.check_access("x", tokens[0], clock()) is None
    bundle, row = _stored(engine, iid)
    assert bundle.access_token is not None and bundle.access_token.reveal() == tokens[0]
    assert row.version == 2
    with engine.connect() as conn:
        status = wh.get_integration(conn, iid)
    assert status is not None and status.status == "active"


def test_a_refused_refresh_marks_the_integration_needs_reauth_with_the_reason(
    engine: sa.Engine, sandbox: SandboxServer, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    iid, issued = _authorize(engine, sandbox, clock, "x")
    sandbox.state.tokens.revoke("x", issued["refresh_token"])
    clock.advance(dt.timedelta(hours=2))
    client = _client(sandbox, _account(engine, "x", clock), clock)
    with pytest.raises(PlatformError) as caught:
        list(client.list_content(DAY))
    error = caught.value
    assert error.error_class is ErrorClass.PERMANENT_CREDENTIAL and error.code == "invalid_request"
    assert "Value passed for the token was invalid." in str(error)
    with engine.connect() as conn:
        integration = wh.get_integration(conn, iid)
    assert integration is not None and integration.status == "needs_reauth"
    assert integration.status_reason is not None
    assert "token refresh refused: invalid_request" in integration.status_reason
    _, row = _stored(engine, iid)
    assert row.version == 1  # nothing was written over the stored pair
    _assert_hidden(
        caplog.text + str(error) + repr(error) + _all_text(engine),
        issued["refresh_token"],
        issued["access_token"],
        CLIENT_SECRET,
    )


def test_a_wrong_client_secret_is_refused_as_a_credential_error(
    engine: sa.Engine, sandbox: SandboxServer, clock: FixedClock
) -> None:
    iid, _issued = _authorize(engine, sandbox, clock, "x")
    cr.save_credential(
        engine,
        iid,
        cr.CredentialBundle(client_secret=Secret("wrong-client-secret-00")),
        cr.parse_keys(KEY),
        cr.Expiry(),
        clock(),
    )
    clock.advance(dt.timedelta(hours=2))
    client = _client(sandbox, _account(engine, "x", clock), clock)
    with pytest.raises(PlatformError, match="unauthorized_client") as caught:
        list(client.list_content(DAY))
    assert caught.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert "wrong-client-secret-00" not in str(caught.value)


# --- LinkedIn ------------------------------------------------------------------------------------


def test_linkedin_refresh_keeps_the_refresh_token_and_its_original_lifetime(
    engine: sa.Engine, sandbox: SandboxServer, clock: FixedClock
) -> None:
    iid, issued = _authorize(engine, sandbox, clock, "linkedin")
    granted_at = clock()
    clock.advance(dt.timedelta(days=61))  # LinkedIn access tokens live 60 days
    client = _client(sandbox, _account(engine, "linkedin", clock), clock)

    assert list(client.list_content(DAY)) is not None

    assert sandbox.state.tokens.refresh_count("linkedin") == 1
    bundle, row = _stored(engine, iid)
    assert bundle.refresh_token is not None
    assert bundle.refresh_token.reveal() == issued["refresh_token"]  # not rotated
    assert row.refresh_expires_at == granted_at + dt.timedelta(days=365)  # does not restart
    assert row.access_expires_at == clock() + dt.timedelta(days=60)
    (token_call,) = _token_requests(sandbox)
    assert token_call.path == "/oauth/v2/accessToken" and token_call.status == 200


def test_linkedin_refreshes_on_a_401_when_the_expiry_is_unknown(
    engine: sa.Engine, sandbox: SandboxServer, clock: FixedClock
) -> None:
    """A token stored without a lifetime is used until LinkedIn says EXPIRED_ACCESS_TOKEN."""
    _iid, _issued = _authorize(engine, sandbox, clock, "linkedin")
    with engine.begin() as conn:  # forget the expiry, as `set-credential` without --expires-in
        conn.execute(sa.update(integration_credentials).values(access_expires_at=None))
    clock.advance(dt.timedelta(days=61))
    client = _client(sandbox, _account(engine, "linkedin", clock), clock)
    assert list(client.list_content(DAY)) is not None
    statuses = [r.status for r in sandbox.requests()]
    assert statuses[:3] == [401, 200, 200]
    assert sandbox.state.tokens.refresh_count("linkedin") == 1


# --- through the ingestion -----------------------------------------------------------------------


def test_ingestion_uses_the_stored_credential_and_refreshes_it(
    engine: sa.Engine,
    sandbox: SandboxServer,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ANALYTICS_CREDENTIALS_KEY", KEY)
    iid, issued = _authorize(engine, sandbox, clock, "x")
    with engine.begin() as conn:  # the stored token expired a minute ago (real clock)
        conn.execute(
            sa.update(integration_credentials).values(
                access_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
            )
        )

    def factory(account: Account) -> PlatformClient:
        return create_client(account, XSettings(base_url=sandbox.base_url))

    request = IntegrationRequest(iid, [DAY], metadata=True, metrics=True)
    options = IngestOptions(
        lookback_days=2,
        snapshot_cutoff=dt.timedelta(hours=3),
        partitions_start=DAY - dt.timedelta(days=30),
    )
    outcomes = list(ingest_integration(engine, factory, request, options))
    assert [o.status for o in outcomes] == [Status.MATERIALIZED] * 2
    assert sandbox.state.tokens.refresh_count("x") == 1
    bundle, _ = _stored(engine, iid)
    assert bundle.refresh_token is not None
    _assert_hidden(caplog.text, issued["refresh_token"], bundle.refresh_token.reveal())


def test_ingestion_without_the_key_fails_as_configuration_not_reauth(
    engine: sa.Engine, sandbox: SandboxServer, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANALYTICS_CREDENTIALS_KEY", raising=False)
    monkeypatch.delenv("ANALYTICS_SECRETS_DIR", raising=False)
    iid, _ = _authorize(engine, sandbox, clock, "x")

    def factory(account: Account) -> PlatformClient:
        raise AssertionError("no client without a credential")

    request = IntegrationRequest(iid, [DAY], metadata=True, metrics=False)
    options = IngestOptions(
        lookback_days=2,
        snapshot_cutoff=dt.timedelta(hours=3),
        partitions_start=DAY - dt.timedelta(days=30),
    )
    (outcome,) = ingest_integration(engine, factory, request, options)
    assert outcome.status is Status.FAILED
    assert outcome.error_class is ErrorClass.PERMANENT_CONFIG
    assert "ANALYTICS_CREDENTIALS_KEY is not set" in (outcome.message or "")
    with engine.connect() as conn:
        integration = wh.get_integration(conn, iid)
    assert integration is not None and integration.status == "active"
