"""`PlatformClient.describe_account()` against the sandbox: ONE documented request per platform
with the account's token, the account's name back, and the errors an operator can act on (an
Instagram id that is a Facebook Page, a missing admin role, an unknown user, a revoked token)."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from analytics_pipeline.defs.resources import PlatformsResource
from analytics_pipeline.onboarding import describe_failure, verify
from analytics_pipeline.platforms.base import Account, PlatformError, Secret
from analytics_pipeline.records import ErrorClass
from analytics_sandbox import SandboxConfig, SandboxServer

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
ACCOUNTS = {
    "facebook": "1000001",
    "instagram": "17841400000000001",
    "linkedin": "urn:li:organization:2000001",
    "x": "3000001",
}
CONFIG = SandboxConfig(known_pages=frozenset(ACCOUNTS.values()))
TOKEN = "unused-module-token"
SECRET = "verify-token-0f3c9a7d"
# The documented request each platform's verification sends (path, and query where it matters).
EXPECTED_PATH = {
    "facebook": "/1000001",
    "instagram": "/17841400000000001",
    "linkedin": "/rest/organizations/2000001",
    "x": "/users/3000001",
}


def _account(platform: str, account_id: str | None = None) -> Account:
    return Account(
        organization_id="org-1",
        integration_id=f"acme-{platform}",
        platform=platform,
        external_account_id=account_id or ACCOUNTS[platform],
        token=Secret(SECRET),
    )


def _factory(sandbox: SandboxServer) -> PlatformsResource:
    return PlatformsResource.from_env(
        {
            **{f"ANALYTICS_{p.upper()}_BASE_URL": sandbox.base_url for p in ACCOUNTS},
            "ANALYTICS_HTTP_MAX_ATTEMPTS": "1",
        }
    )


@pytest.mark.parametrize("platform", sorted(ACCOUNTS))
def test_verify_reads_the_account_once_with_its_token(
    platform: str, sandbox: SandboxServer, sent: list[requests.PreparedRequest]
) -> None:
    verified = verify(_account(platform), _factory(sandbox).create_client)
    meta = platform in ("facebook", "instagram")
    # Meta: a second call, the token's expiry (debug_token in a batch POST, see
    # test_meta_token_check.py); the other platforms report no expiry to ask for.
    assert verified.api_calls == len(sent) == (2 if meta else 1)
    assert (verified.token_status is not None) is meta and verified.token_error is None
    request = sent[0]
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    assert request.path_url.split("?")[0].endswith(EXPECTED_PATH[platform])
    found = verified.description
    assert found.account_id == ACCOUNTS[platform]
    assert found.name and SECRET not in repr(found)
    if platform in ("instagram", "x"):
        assert found.handle and found.handle.startswith("@")


def test_an_instagram_id_that_is_a_facebook_page_is_reported_as_such(
    sandbox: SandboxServer,
) -> None:
    account = _account("instagram", ACCOUNTS["facebook"])
    with pytest.raises(PlatformError) as info:
        verify(account, _factory(sandbox).create_client)
    error = info.value
    assert (error.error_class, error.code) == (ErrorClass.PERMANENT_CONFIG, "wrong_account_kind")
    assert "Facebook Page" in error.message and "instagram_business_account" in error.message
    line = describe_failure(account, error)
    assert "\n" not in line and "NOT verified" in line and SECRET not in line


def test_a_facebook_id_that_is_an_instagram_account_is_reported_as_such(
    sandbox: SandboxServer,
) -> None:
    with pytest.raises(PlatformError) as info:
        verify(_account("facebook", ACCOUNTS["instagram"]), _factory(sandbox).create_client)
    assert info.value.code == "wrong_account_kind"
    assert "Instagram account" in info.value.message


def test_a_linkedin_member_without_the_admin_role_is_a_credential_error(
    sandbox: SandboxServer,
) -> None:
    sandbox.faults.update(permission_denied_accounts=[ACCOUNTS["linkedin"]])
    with pytest.raises(PlatformError) as info:
        verify(_account("linkedin"), _factory(sandbox).create_client)
    assert info.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert info.value.http_status == 403


@pytest.mark.parametrize(
    ("platform", "unknown"),
    [("x", "3000009"), ("linkedin", "urn:li:organization:2000009"), ("facebook", "1000009")],
)
def test_an_account_the_token_cannot_see_is_refused_with_the_platform_reason(
    platform: str, unknown: str, sandbox: SandboxServer
) -> None:
    with pytest.raises(PlatformError) as info:
        verify(_account(platform, unknown), _factory(sandbox).create_client)
    assert info.value.error_class in (ErrorClass.PERMANENT_CREDENTIAL, ErrorClass.PERMANENT_OBJECT)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("platform", ["facebook", "instagram", "linkedin"])
def test_an_expired_token_is_a_credential_error(platform: str, sandbox: SandboxServer) -> None:
    sandbox.faults.expire_token(ACCOUNTS[platform])
    with pytest.raises(PlatformError) as info:
        verify(_account(platform), _factory(sandbox).create_client)
    assert info.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert SECRET not in str(info.value)
