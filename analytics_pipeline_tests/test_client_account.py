"""A client is created for one account and owns it: every request it sends carries that
account's token (in the Authorization header only) and that account's ids, without the account
being passed again; its repr never shows the token; ingestion builds the account once per
integration and creates its client from it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.resources import PlatformsResource
from analytics_pipeline.ingest import IngestOptions, IntegrationRequest, Status, ingest_integration
from analytics_pipeline.platforms import (
    SUPPORTED_PLATFORMS,
    client_class,
    create_client,
    settings_type,
)
from analytics_pipeline.platforms.base import Account, PlatformClient, Secret
from analytics_pipeline.platforms.facebook import FacebookClient, FacebookSettings
from analytics_pipeline.records import AssetName, ErrorClass
from analytics_pipeline_tests.fakes import FakeClient, sent_text
from analytics_pipeline_tests.helpers import acme_integration
from analytics_sandbox import SandboxConfig, SandboxServer

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)  # the clients use the real clock
DAY = NOW.date() - dt.timedelta(days=1)
CONFIG = SandboxConfig(posts_per_day=(2, 6))
TOKEN = "unused-module-token"  # the `http` fixture's; the clients here have their own
# Two accounts per platform, each with its own token.
ACCOUNT_IDS = {
    "facebook": ("1000001", "1000002"),
    "instagram": ("17841400000000001", "17841400000000002"),
    "linkedin": ("urn:li:organization:2000001", "urn:li:organization:2000002"),
    "x": ("3000001", "3000002"),
}


def account(platform: str, n: int) -> Account:
    return Account(
        organization_id="org-1",
        integration_id=f"{platform}-{n}",
        platform=platform,
        external_account_id=ACCOUNT_IDS[platform][n],
        token=Secret(f"token-of-{platform}-account-{n}-4b1d"),
    )


def use_every_method(client: PlatformClient) -> None:
    """Listing, content metrics and account metrics of `DAY`: no call names the account."""
    ids = [item.external_content_id for item in client.list_content(DAY)]
    assert ids, "no content on DAY: the sandbox config should give every account posts"
    client.fetch_content_metrics(ids, DAY)
    client.fetch_account_metrics(DAY, include_snapshot=True)


@pytest.mark.parametrize("platform", SUPPORTED_PLATFORMS)
def test_a_client_sends_only_its_own_accounts_token_and_ids(
    platform: str, sandbox: SandboxServer, sent: list[requests.PreparedRequest]
) -> None:
    resource = PlatformsResource.from_env(
        {f"ANALYTICS_{platform.upper()}_BASE_URL": sandbox.base_url}
    )
    first, second = account(platform, 0), account(platform, 1)
    client_a, client_b = resource.create_client(first), resource.create_client(second)
    assert (client_a.account, client_b.account) == (first, second)
    # Interleaved, so that anything one client kept about the other would show.
    for client in (client_a, client_b, client_a):
        sent_before, logged_before = len(sent), sandbox.request_count()
        use_every_method(client)
        requests_sent = sent[sent_before:]
        records = sandbox.requests()[logged_before:]
        assert requests_sent and len(records) == len(requests_sent)
        token = client.account.token.reveal()
        for request in requests_sent:
            assert request.headers["Authorization"] == f"Bearer {token}"
            assert token not in sent_text(request)
        own_id = client.account.external_account_id
        assert {record.page_ids for record in records} == {(own_id,)}


@pytest.mark.parametrize("platform", SUPPORTED_PLATFORMS)
def test_repr_and_str_of_a_client_show_the_account_but_never_the_token(platform: str) -> None:
    owner = account(platform, 0)
    client = create_client(owner, settings_type(platform)())
    assert isinstance(client, client_class(platform)) and client.account is owner
    token = owner.token.reveal()
    for text in (repr(client), str(client), f"{client}", f"{client!r}", repr(client.account)):
        assert token not in text
        assert owner.integration_id in text and owner.external_account_id in text


def test_a_client_refuses_an_account_of_another_platform() -> None:
    with pytest.raises(ValueError, match="cannot serve integration 'x-0' of platform 'x'"):
        FacebookClient(FacebookSettings(), account("x", 0))


# --------------------------------------------------------------------------- ingestion


def _options() -> IngestOptions:
    return IngestOptions(
        lookback_days=3,
        snapshot_cutoff=dt.timedelta(hours=3),
        partitions_start=DAY - dt.timedelta(days=30),
        now=lambda: NOW,
    )


@pytest.fixture
def integration(engine: Any) -> wh.TrackedIntegration:
    with engine.begin() as conn:
        return wh.add_integration(conn, **acme_integration(now=NOW))


def test_ingestion_builds_the_account_once_and_creates_its_client_from_it(
    engine: Any, integration: wh.TrackedIntegration, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(integration.credential_env, "acme-page-token-0123")
    created: list[FakeClient] = []

    def factory(owner: Account) -> PlatformClient:
        created.append(FakeClient(owner))
        return created[-1]

    days = [DAY - dt.timedelta(days=1), DAY]
    request = IntegrationRequest(
        integration.integration_id, days, metadata=True, metrics=True, account=True
    )
    outcomes = list(ingest_integration(engine, factory, request, _options()))
    assert [o.status for o in outcomes] == [Status.MATERIALIZED] * 6
    (client,) = created
    assert client.account == Account(
        organization_id=integration.organization_id,
        integration_id=integration.integration_id,
        platform=integration.platform,
        external_account_id=integration.external_account_id,
        token=client.account.token,
    )
    assert client.account.token.reveal() == "acme-page-token-0123"
    # One range listing (the windows of both days), each day's metrics, one account range.
    assert client.calls == [
        ("list_content_between", days[0] - dt.timedelta(days=2)),
        *[("fetch_content_metrics", day) for day in days],
        ("fetch_account_metrics_between", days[0]),
    ]


@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_token_fails_the_integration_without_creating_a_client(
    engine: Any,
    integration: wh.TrackedIntegration,
    monkeypatch: pytest.MonkeyPatch,
    value: str | None,
) -> None:
    if value is None:
        monkeypatch.delenv(integration.credential_env, raising=False)
    else:
        monkeypatch.setenv(integration.credential_env, value)

    def factory(owner: Account) -> PlatformClient:
        raise AssertionError("no client without a token")

    request = IntegrationRequest(integration.integration_id, [DAY], metadata=True, metrics=True)
    first, second = ingest_integration(engine, factory, request, _options())
    assert (first.asset, first.status) == (AssetName.CONTENT_METADATA, Status.FAILED)
    assert first.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert first.message == (
        f"facebook permanent_credential: No credential for integration "
        f"{integration.integration_id!r}: nothing in the encrypted store, and environment "
        f"variable {integration.credential_env} is not set or empty where this runs."
    )
    assert second.status is Status.FAILED and second.metadata["not_attempted"] is True
    with engine.connect() as conn:
        after = wh.get_integration(conn, integration.integration_id)
    assert after is not None and after.status == "needs_reauth"
