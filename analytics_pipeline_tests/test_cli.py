"""The `analytics-pipeline` command (set-up, integrations, bad input) and `analytics-sandbox demo`
twice."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from analytics_pipeline.cli import main, run_reporting_errors
from analytics_pipeline.warehouse import make_engine, tables
from analytics_pipeline.warehouse.migrations import known_versions
from analytics_sandbox.__main__ import main as sandbox_main


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    monkeypatch.setenv("ANALYTICS_WAREHOUSE_URL", url)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    # The demo points these at its sandbox; monkeypatch restores them afterwards.
    monkeypatch.setenv("ANALYTICS_FACEBOOK_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("ANALYTICS_DEMO_TOKEN", raising=False)
    return url


def _add(*extra: str) -> int:
    return main(
        [
            "integrations",
            "add",
            "--org",
            "acme",
            "--platform",
            "facebook",
            "--account",
            "1000001",
            "--token-env",
            "ACME_TOKEN",
            *extra,
        ]
    )


def test_init_db_is_idempotent(cli_env, capsys):
    assert main(["init-db"]) == 0
    assert f"applied revisions {', '.join(known_versions())}" in capsys.readouterr().out
    assert main(["init-db"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_integration_lifecycle_and_bad_input(cli_env, capsys):
    main(["init-db"])
    assert _add("--id", "acme-fb") == 0
    assert _add("--id", "acme-fb") == 2  # duplicate
    assert _add("--id", "Bad|Id") == 2  # not a valid partition key
    assert main(["integrations", "pause", "nope"]) == 2
    assert main(["integrations", "pause", "acme-fb", "--reason", "offboarding"]) == 0
    err = capsys.readouterr().err
    assert "Bad|Id" in err or "integration" in err.lower()
    assert main(["integrations", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["integration_id"], row["status"], row["status_reason"]) == (
        "acme-fb",
        "paused",
        "offboarding",
    )
    # resume runs the initial window's missing partitions here: refused without the token
    assert main(["integrations", "resume", "acme-fb"]) == 2
    assert "ACME_TOKEN" in capsys.readouterr().err
    assert main(["integrations", "remove", "acme-fb"]) == 0
    capsys.readouterr()
    assert main(["integrations", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_bad_warehouse_url_is_one_clear_line_without_the_password(cli_env, monkeypatch, capsys):
    monkeypatch.setenv("ANALYTICS_WAREHOUSE_URL", "mysql://bob:hunter2@db/analytics")
    assert main(["init-db"]) == 2
    err = capsys.readouterr().err
    assert "ANALYTICS_WAREHOUSE_URL" in err
    assert "hunter2" not in err


def test_backfill_rejects_reversed_or_incomplete_ranges(cli_env, capsys):
    main(["init-db"])
    assert main(["backfill", "--start", "2026-11-10", "--end", "2026-11-01"]) == 2
    assert "before --start" in capsys.readouterr().err
    assert main(["backfill", "--start", "2026-11-10", "--end", "2999-01-01"]) == 2
    assert "is in the future" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["backfill", "--start", "2026-13-01", "--end", "2026-11-01"], "not a date in YYYY"),
        (["integrations", "add", "--platform", "myspace"], "invalid choice: 'myspace'"),
        (["integrations"], "required: action"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["integrations", "list", "--jsn"], "unrecognized arguments: --jsn"),
    ],
)
def test_a_usage_error_is_one_line_that_points_to_help(argv, expected, capsys):
    """argparse prints its usage before the error: three lines for one mistake. One here."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert captured.out == "" and expected in line and "usage:" not in line
    assert line.startswith("analytics-pipeline") and line.endswith("--help`)")


def test_demo_twice_leaves_the_same_rows(cli_env, capsys):
    assert sandbox_main(["demo", "--days", "2", "--pages", "2"]) == 0
    first_out = capsys.readouterr().out
    assert "demo-fb-1" in first_out and "demo-fb-2" in first_out
    engine = make_engine(cli_env)

    def snapshot():
        with engine.connect() as conn:
            items = conn.execute(
                sa.select(
                    tables.content_items.c.external_content_id, tables.content_items.c.caption
                )
            ).all()
            metrics = conn.execute(
                sa.select(
                    tables.content_metrics_daily.c.external_content_id,
                    tables.content_metrics_daily.c.metric_date,
                    tables.content_metrics_daily.c.views,
                )
            ).all()
        return sorted(items), sorted(metrics)

    first = snapshot()
    assert first[0], "the demo landed no content"
    _assert_kpi_summary(first_out, engine)
    assert sandbox_main(["demo", "--days", "2", "--pages", "2"]) == 0
    assert snapshot() == first


def _assert_kpi_summary(out: str, engine: sa.Engine) -> None:
    """The demo ran the KPI job and the weekly and monthly rollups, and printed, per account,
    what the KPI tables hold."""
    runs_part, section = out.split("KPI runs", 1)[1].split("KPIs per account", 1)
    jobs = {line.split()[0]: line for line in runs_part.splitlines()[1:] if line.strip()}
    assert set(jobs) == {"kpi_job", "kpi_rollups_weekly_job", "kpi_rollups_monthly_job"}
    assert all(": SUCCESS," in line for line in jobs.values()), jobs
    lines = {
        line.split()[0]: line.split()
        for line in section.splitlines()[2:]
        if line.startswith(" ") and "--by" not in line
    }
    akd, report = tables.account_kpis_daily, tables.social_media_report
    with engine.connect() as conn:
        rolled_up = set(
            conn.execute(
                sa.select(tables.kpi_rollups.c.scope_key).where(
                    tables.kpi_rollups.c.scope == "integration"
                )
            ).scalars()
        )
    with engine.connect() as conn:
        engagements = dict(
            conn.execute(
                sa.select(akd.c.integration_id, sa.func.sum(akd.c.engagements)).group_by(
                    akd.c.integration_id
                )
            ).all()
        )
        report_rows = dict(
            conn.execute(
                sa.select(report.c.integration_id, sa.func.count()).group_by(
                    report.c.integration_id
                )
            ).all()
        )
    assert set(lines) == set(engagements) == rolled_up and len(lines) == 5
    for integration_id, words in lines.items():
        total = engagements[integration_id]
        assert words[4] == ("NULL" if total is None else str(total)), words
        assert words[-1] == str(report_rows.get(integration_id, 0)), words
    assert sum(report_rows.values()) > 0, "social_media_report is empty after the demo"


def _boom() -> int:
    raise RuntimeError("disk on fire\nsecond line of details")


def test_an_unexpected_error_is_one_line_and_verbose_adds_the_traceback(capsys):
    assert run_reporting_errors("analytics-pipeline x", _boom) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "analytics-pipeline x: unexpected error: RuntimeError: disk on fire "
        "(run with --verbose for details)"
    ]
    assert run_reporting_errors("analytics-pipeline x", _boom, verbose=True) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "second line of details" in err


def test_an_operator_error_never_shows_a_known_token(cli_env, monkeypatch, capsys):
    from analytics_pipeline.platforms.base import Secret

    token = Secret("tok-9a8b7c6d5e4f")

    def fails() -> int:
        raise PermissionError(13, "Permission denied", f"/srv/{token.reveal()}/wh.sqlite")

    assert run_reporting_errors("analytics-pipeline x", fails) == 2
    err = capsys.readouterr().err
    assert "Permission denied" in err and token.reveal() not in err
