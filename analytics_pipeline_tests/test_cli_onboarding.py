"""`analytics-pipeline integrations ...` as an operator onboarding accounts uses it, on SQLite and
PostgreSQL warehouses, with the sandbox answering `--verify` / `verify` and `resume`'s runs."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import dagster as dg
import pytest

from analytics_pipeline.cli import main
from analytics_pipeline.defs.automation import initial_window
from analytics_sandbox import SandboxConfig, SandboxServer

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)  # the CLI uses the real clock
CONFIG = SandboxConfig(posts_per_day=(0, 1))
TOKEN = "unused-module-token"
SECRET = "cli-onboarding-token-5e1f"


@pytest.fixture
def cli(
    warehouse_url: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[pytest.MonkeyPatch]:
    """An empty warehouse of each dialect, a Dagster home of its own, no token set."""
    monkeypatch.setenv("ANALYTICS_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("ACME_TOKEN", raising=False)
    yield monkeypatch


@pytest.fixture
def on_sandbox(cli: pytest.MonkeyPatch, sandbox: SandboxServer) -> SandboxServer:
    for platform in ("facebook", "instagram", "linkedin", "x"):
        cli.setenv(f"ANALYTICS_{platform.upper()}_BASE_URL", sandbox.base_url)
    cli.setenv("ANALYTICS_HTTP_MAX_ATTEMPTS", "1")
    cli.setenv("ACME_TOKEN", SECRET)
    return sandbox


def add(integration_id: str, platform: str, account: str, *extra: str) -> int:
    return main(
        [
            "integrations",
            "add",
            "--org",
            "acme",
            "--id",
            integration_id,
            "--platform",
            platform,
            "--account",
            account,
            "--token-env",
            "ACME_TOKEN",
            *extra,
        ]
    )


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_an_unmigrated_warehouse_says_to_run_init_db(cli, capsys) -> None:
    assert main(["integrations", "list"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "run `analytics-pipeline init-db`" in err and "empty" in err


def test_add_validates_ids_and_refuses_a_second_integration_for_an_account(cli, capsys) -> None:
    assert main(["init-db"]) == 0
    assert add("acme-fb", "facebook", "1000001", "--name", "Acme Page") == 0
    out, err = capsys.readouterr()
    assert "Added acme-fb (facebook 1000001, organization acme)." in out
    assert "$ACME_TOKEN is not set here" in one_line(err)  # the credential warning
    assert add("acme-fb-again", "facebook", "1000001") == 2
    assert "already tracks facebook account 1000001 as integration 'acme-fb'" in one_line(
        capsys.readouterr().err
    )
    for platform, account, expected in [
        ("linkedin", "12345", "urn:li:organization:<number>"),
        ("x", "@acme", "numeric X user id"),
        ("instagram", "acme.brand", "numeric Instagram"),
    ]:
        assert add(f"acme-{platform}", platform, account) == 2
        assert expected in one_line(capsys.readouterr().err)
    cli.setenv("ACME_TOKEN", SECRET)
    assert add("acme-li", "linkedin", "urn:li:organization:2000001") == 0
    assert capsys.readouterr().err == ""  # the credential resolves: no warning
    assert main(["integrations", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["integration_id"], r["display_name"]) for r in listed] == [
        ("acme-fb", "Acme Page"),
        ("acme-li", "acme-li"),
    ]


def test_list_has_a_header_and_aligned_columns(cli, capsys) -> None:
    main(["init-db"])
    add("acme-fb", "facebook", "1000001", "--name", "Acme Main Page")
    add("b", "x", "3000001")
    main(["integrations", "pause", "b", "--reason", "client offboarding"])
    capsys.readouterr()
    assert main(["integrations", "list"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    titles = ["ORGANIZATION", "ID", "NAME", "PLATFORM", "ACCOUNT", "STATUS", "REASON"]
    assert header.split() == titles
    starts = [header.index(title) for title in titles]
    assert len(rows) == 2
    for row, values in zip(
        rows,
        [
            ["acme", "acme-fb", "Acme Main Page", "facebook", "1000001", "active", ""],
            ["acme", "b", "b", "x", "3000001", "paused", "client offboarding"],
        ],
        strict=True,
    ):
        for start, value in zip(starts, values, strict=True):
            assert row[start:].startswith(value), (row, value)


def test_pause_and_resume_say_what_they_did(cli, capsys) -> None:
    main(["init-db"])
    add("acme-fb", "facebook", "1000001")
    capsys.readouterr()
    assert main(["integrations", "pause", "acme-fb", "--reason", "holiday"]) == 0
    assert capsys.readouterr().out == "Paused acme-fb (holiday).\n"
    assert main(["integrations", "pause", "acme-fb"]) == 0
    assert capsys.readouterr().out == "acme-fb is already paused (holiday).\n"
    assert main(["integrations", "pause", "acme-fb", "--reason", "offboarding"]) == 0
    assert "reason now: offboarding" in capsys.readouterr().out
    # resume runs the missing partitions here: it refuses while the token is not set
    assert main(["integrations", "resume", "acme-fb"]) == 2
    assert "ACME_TOKEN" in one_line(capsys.readouterr().err)
    assert main(["integrations", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["status"], row["status_reason"]) == ("paused", "offboarding")
    assert main(["integrations", "remove", "acme-fb"]) == 0
    add("acme-fb", "facebook", "1000001")  # re-added: active
    capsys.readouterr()
    assert main(["integrations", "resume", "acme-fb"]) == 0
    assert capsys.readouterr().out == "acme-fb is already active.\n"


# --- with the sandbox ---------------------------------------------------------------------------


def test_add_verify_adds_only_an_account_the_platform_confirms(on_sandbox, capsys) -> None:
    main(["init-db"])
    capsys.readouterr()
    assert add("acme-ig", "instagram", "17841400000000001", "--verify") == 0
    out = capsys.readouterr().out
    assert "acme-ig: instagram account 17841400000000001 is 'Sandbox IG 000001'" in out
    assert "(@" in out and "Added acme-ig" in out
    # A Facebook Page id given as the Instagram account: refused, nothing added.
    assert add("acme-ig-2", "instagram", "1000001", "--verify") == 1
    out, err = capsys.readouterr()
    assert "Facebook Page" in one_line(err) and SECRET not in err
    assert "Nothing was added" in out
    main(["integrations", "list", "--json"])
    ids = [row["integration_id"] for row in json.loads(capsys.readouterr().out)]
    assert ids == ["acme-ig"]
    # The verified account: its read and its token's expiry (Meta); the refused one: its read.
    assert on_sandbox.request_count() == 3
    # An account already tracked is refused before any call to the platform.
    assert add("acme-ig-3", "instagram", "17841400000000001", "--verify") == 2
    assert "already tracks instagram account" in one_line(capsys.readouterr().err)
    assert on_sandbox.request_count() == 3


def test_verify_calls_the_platform_once_with_the_integrations_credential(
    on_sandbox, cli, capsys
) -> None:
    main(["init-db"])
    add("acme-li", "linkedin", "urn:li:organization:2000001")
    capsys.readouterr()
    assert main(["integrations", "verify", "acme-li"]) == 0
    out = capsys.readouterr().out
    assert "'Sandbox Org 2000001' (sandbox-org-2000001), reachable" in out
    assert "acme-li: credential from $ACME_TOKEN." in out  # where it comes from, not its value
    assert on_sandbox.request_count() == 1
    on_sandbox.faults.update(permission_denied_accounts=["urn:li:organization:2000001"])
    assert main(["integrations", "verify", "acme-li"]) == 1
    err = one_line(capsys.readouterr().err)
    assert "lacks a permission" in err and "ACCESS_DENIED" in err
    cli.delenv("ACME_TOKEN")
    assert main(["integrations", "verify", "acme-li"]) == 2
    assert "ACME_TOKEN" in one_line(capsys.readouterr().err)


def _materialized(integration_id: str) -> set[str]:
    with dg.DagsterInstance.get() as instance:
        keys = instance.get_materialized_partitions(dg.AssetKey("content_metadata"))
    return {key for key in keys if key.endswith(f"|{integration_id}")}


def test_resume_reruns_only_the_missing_partitions_of_the_initial_window(
    on_sandbox, capsys
) -> None:
    main(["init-db"])
    add("acme-fb", "facebook", "1000001")
    start, end = initial_window(dt.datetime.now(dt.UTC))
    before_last = end - dt.timedelta(days=1)
    assert main(["backfill", "--start", str(before_last), "--end", str(end)]) == 0
    assert len(_materialized("acme-fb")) == 2
    main(["integrations", "pause", "acme-fb", "--reason", "token expired"])
    capsys.readouterr()
    assert main(["integrations", "resume", "acme-fb"]) == 0
    out = capsys.readouterr().out
    # Only what is not materialized yet: the window minus its last two days.
    missing_end = before_last - dt.timedelta(days=1)
    assert f"Re-requesting acme-fb {start}..{missing_end} (not materialized)." in out
    assert out.count("Re-requesting") == 1
    assert "Resumed acme-fb (was paused: token expired)." in out
    assert "Dagster instance: " in out and "(sqlite)" in out
    assert len(_materialized("acme-fb")) == (end - start).days + 1
    main(["integrations", "pause", "acme-fb"])
    capsys.readouterr()
    assert main(["integrations", "resume", "acme-fb"]) == 0
    out = capsys.readouterr().out
    assert "Every partition of acme-fb's initial window is materialized." in out
    assert "Re-requesting" not in out
