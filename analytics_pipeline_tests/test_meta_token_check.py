"""The Meta token expiry check over HTTP against the sandbox: `debug_token` asked inside a Graph
batch POST (the token never in a URL), parsed into a `TokenStatus`, and the warning shown where
an operator looks: `integrations verify` and the ingestion run's log (once per integration per
run) and its first materialization of the integration."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from urllib.parse import parse_qs, quote_plus

import dagster as dg
import pytest
import requests

from analytics_pipeline import warehouse as wh
from analytics_pipeline.cli import main
from analytics_pipeline.defs.assets import social_ingestion
from analytics_pipeline.defs.partitions import INTEGRATIONS_PARTITIONS_NAME, range_run_tags
from analytics_pipeline.defs.resources import PlatformsResource, WarehouseResource
from analytics_pipeline.platforms.base import Account, Secret
from analytics_pipeline.platforms.graph import DEFAULT_GRAPH_API_VERSION
from analytics_pipeline.warehouse.migrations import migrate
from analytics_pipeline_tests.helpers import acme_integration, facebook_sandbox_platforms
from analytics_sandbox import SandboxConfig, SandboxServer

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)  # the CLI and the runs use the real clock
CONFIG = SandboxConfig(posts_per_day=(0, 2))
TOKEN = "unused-module-token"
SECRET = "meta-token-check-9d2c41"
OTHER = "meta-token-other-7a0e55"
ACCOUNTS = {"facebook": "1000001", "instagram": "17841400000000001"}
DAY = 86_400


def _client(platform: str, sandbox: SandboxServer, token: str = SECRET):  # type: ignore[no-untyped-def]
    resource = PlatformsResource.from_env(
        {f"ANALYTICS_{platform.upper()}_BASE_URL": sandbox.base_url}
    )
    account = Account("org-1", f"acme-{platform}", platform, ACCOUNTS[platform], Secret(token))
    return resource.create_client(account)


# --- the request and its reply ------------------------------------------------------------------


@pytest.mark.parametrize("platform", sorted(ACCOUNTS))
def test_debug_token_is_one_batch_post_with_the_token_out_of_the_url(
    platform: str, sandbox: SandboxServer, sent: list[requests.PreparedRequest]
) -> None:
    status = _client(platform, sandbox).token_status()
    (request,) = sent
    assert request.method == "POST"
    assert request.path_url == f"/{DEFAULT_GRAPH_API_VERSION}/"  # no query string at all
    assert SECRET not in request.url and quote_plus(SECRET) not in request.url
    assert request.headers["Authorization"] == f"Bearer {SECRET}"
    form = parse_qs(str(request.body))
    assert "access_token" not in form
    (batch,) = form["batch"]
    assert json.loads(batch) == [
        {"method": "GET", "relative_url": f"debug_token?input_token={quote_plus(SECRET)}"}
    ]
    (record,) = sandbox.requests()
    assert (record.method, record.query, record.access_token_in_query) == ("POST", "", False)
    assert record.status == 200 and record.authorization_present
    # A Page token: expires_at 0 (never), data access 90 days ahead (the sandbox's clock).
    assert status.is_valid and status.expires_at is None
    assert status.data_access_expires_at == NOW + dt.timedelta(days=90)
    assert "pages_read_engagement" in status.scopes
    assert SECRET not in repr(status)


def test_the_fault_switch_sets_one_tokens_limits_and_star_the_others(
    sandbox: SandboxServer,
) -> None:
    sandbox.faults.set_token_limits(SECRET, expires_in_s=2 * DAY, data_access_expires_in_s=DAY)
    soon = _client("facebook", sandbox).token_status()
    assert soon.expires_at == NOW + dt.timedelta(days=2)
    assert soon.data_access_expires_at == NOW + dt.timedelta(days=1)
    assert _client("facebook", sandbox, OTHER).token_status().expires_at is None
    sandbox.faults.set_token_limits("*", is_valid=False)
    assert not _client("instagram", sandbox, OTHER).token_status().is_valid
    assert _client("instagram", sandbox).token_status().is_valid  # its own entry wins
    assert SECRET not in json.dumps(sandbox.faults.snapshot())  # keyed by a fingerprint
    with pytest.raises(ValueError, match="meta_token_limits"):
        sandbox.faults.update(meta_token_limits={"*": {"expires_in_s": "soon"}})


def test_a_debug_token_get_with_the_token_in_its_query_is_flagged_and_masked(
    sandbox: SandboxServer,
) -> None:
    """What our clients never do, the sandbox notices: the request log flags it."""
    reply = requests.get(
        f"{sandbox.base_url}/{DEFAULT_GRAPH_API_VERSION}/debug_token",
        params={"input_token": SECRET},
        headers={"Authorization": f"Bearer {SECRET}"},
        timeout=10,
    )
    assert reply.status_code == 200 and reply.json()["data"]["expires_at"] == 0
    (record,) = sandbox.requests()
    assert record.access_token_in_query and SECRET not in record.query


# --- integrations verify -------------------------------------------------------------------------


@pytest.fixture
def cli(
    warehouse_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch, sandbox: SandboxServer
) -> Iterator[SandboxServer]:
    """A migrated warehouse of each dialect tracking a Facebook page with `SECRET`."""
    monkeypatch.setenv("ANALYTICS_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("ANALYTICS_FACEBOOK_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("ANALYTICS_HTTP_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("ACME_TOKEN", SECRET)
    monkeypatch.delenv("ANALYTICS_TOKEN_EXPIRY_WARN_DAYS", raising=False)
    assert main(["init-db"]) == 0
    args = ["--org", "acme", "--id", "acme-fb", "--platform", "facebook"]
    assert (
        main(["integrations", "add", *args, "--account", "1000001", "--token-env", "ACME_TOKEN"])
        == 0
    )
    yield sandbox


def test_verify_warns_when_the_token_loses_data_access_within_the_window(
    cli: SandboxServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    capsys.readouterr()
    assert main(["integrations", "verify", "acme-fb"]) == 0
    out, err = capsys.readouterr()
    assert "reachable with its credential (2 API calls)" in out and err == ""  # 90 days: quiet
    cli.faults.set_token_limits(SECRET, data_access_expires_in_s=3 * DAY + 3600)
    assert main(["integrations", "verify", "acme-fb"]) == 0
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    when = (NOW + dt.timedelta(days=3, hours=1)).strftime("%Y-%m-%d %H:%M UTC")
    assert line.startswith("warning: The Meta token of integration 'acme-fb' loses data access")
    assert when in line and "(in 3 days)" in line and SECRET not in out + err
    monkeypatch.setenv("ANALYTICS_TOKEN_EXPIRY_WARN_DAYS", "2")  # the window is a setting
    assert main(["integrations", "verify", "acme-fb"]) == 0
    assert capsys.readouterr().err == ""
    records = cli.requests()
    assert [r.method for r in records] == ["GET", "POST"] * 3  # the page, then debug_token
    assert not any(r.access_token_in_query or "token" in r.query for r in records)


# --- the ingestion run ---------------------------------------------------------------------------

PAGES = {"fb-1": ("1000001", "RUN_TOKEN_1", SECRET), "fb-2": ("1000002", "RUN_TOKEN_2", OTHER)}
END = NOW.date() - dt.timedelta(days=1)


@pytest.fixture
def run_env(sandbox: SandboxServer, tmp_path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    engine = wh.make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        for integration_id, (page, env, token) in PAGES.items():
            monkeypatch.setenv(env, token)
            added = acme_integration(
                integration_id=integration_id, external_account_id=page, credential_env=env
            )
            wh.add_integration(conn, **added)
    monkeypatch.delenv("ANALYTICS_TOKEN_EXPIRY_WARN_DAYS", raising=False)
    resources = {
        "warehouse": WarehouseResource(url=url),
        "platforms": facebook_sandbox_platforms(sandbox.base_url, ANALYTICS_HTTP_MAX_ATTEMPTS="1"),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, list(PAGES))
        yield instance, resources
    engine.dispose()


def _warnings(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [
        entry.user_message
        for entry in instance.all_logs(run_id)
        if entry.level >= 30 and "Meta token" in entry.user_message
    ]


def test_the_run_warns_once_per_integration_in_its_log_and_materialization(
    run_env, sandbox: SandboxServer
) -> None:
    instance, resources = run_env
    sandbox.faults.set_token_limits(SECRET, expires_in_s=5 * DAY + 3600)
    # fb-2 fails transiently every time: the step is retried, the warning is not repeated.
    sandbox.faults.fail_next(PAGES["fb-2"][0], 100_000)
    result = dg.materialize(
        [social_ingestion],
        instance=instance,
        resources=resources,
        tags=range_run_tags(END - dt.timedelta(days=1), END, list(PAGES)),
        raise_on_error=False,
    )
    retries = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert retries, "fb-2's failures should have retried the step"
    (warning,) = _warnings(instance, result.run_id)
    assert "integration 'fb-1' expires on" in warning and "(in 5 days)" in warning
    with_warning = [
        event.partition
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        and "token_warning" in event.materialization.metadata
    ]
    assert len(with_warning) == 1 and with_warning[0].endswith("|fb-1")
    texts = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert not any(SECRET in text or OTHER in text for text in texts)
    # One debug_token batch per integration, in the first attempt only; none with a token in
    # its URL.
    records = sandbox.requests()
    assert sum(1 for r in records if r.method == "POST" and not r.page_ids) == len(PAGES)
    assert not any(r.access_token_in_query for r in records)


def test_a_token_far_from_expiry_gives_no_warning(run_env, sandbox: SandboxServer) -> None:
    instance, resources = run_env
    result = dg.materialize(
        [social_ingestion],
        instance=instance,
        resources=resources,
        tags=range_run_tags(END, END, list(PAGES)),
        raise_on_error=False,
    )
    assert result.success
    assert _warnings(instance, result.run_id) == []
