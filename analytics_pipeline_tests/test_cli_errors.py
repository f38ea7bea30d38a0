"""The real `analytics-pipeline` command, as an operator runs it: every operator error is ONE line
on stderr (no traceback, no Dagster or Python warning), `--verbose` shows the details, a
backfill refused before it starts leaves no run behind, and the command names its Dagster
instance."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from analytics_pipeline import warehouse as wh
from analytics_pipeline_tests.helpers import acme_integration

COMMAND = Path(sys.executable).with_name("analytics-pipeline")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
BASH = shutil.which("bash") or "/bin/bash"


def run(
    args: Sequence[str], env: dict[str, str], cwd: Path = PROJECT_ROOT
) -> subprocess.CompletedProcess[str]:
    """The command in a clean environment (cwd: the project, which has its own dagster.yaml)."""
    return _execute([str(COMMAND), *args], env, cwd)


def _execute(
    argv: Sequence[str], env: dict[str, str], cwd: Path = PROJECT_ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=240, check=False
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    values = {name: os.environ[name] for name in keep if name in os.environ}
    values["ANALYTICS_WAREHOUSE_URL"] = f"sqlite:///{tmp_path / 'wh.sqlite'}"
    values["DAGSTER_HOME"] = str(tmp_path / "dagster_home")
    return values


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert "error:" in line and "Traceback" not in line
    for text in expected:
        assert text in line, line
    assert "Warning" not in result.stdout + result.stderr
    return line


def _postgres(postgres_url: str, **changes: object) -> str:
    return make_url(postgres_url).set(**changes).render_as_string(hide_password=False)


def test_an_unreachable_postgresql_server_is_one_line(env, postgres_url) -> None:
    env["ANALYTICS_WAREHOUSE_URL"] = _postgres(postgres_url, port=1)
    line = assert_one_line_error(run(["init-db"], env), "cannot be used", "ANALYTICS_WAREHOUSE_URL")
    assert "refused" in line.lower()


def test_a_missing_postgresql_database_is_one_line(env, postgres_url) -> None:
    env["ANALYTICS_WAREHOUSE_URL"] = _postgres(postgres_url, database="no_such_db_0f3a")
    assert_one_line_error(run(["integrations", "list"], env), "no_such_db_0f3a", "does not exist")


def test_a_sqlite_file_in_a_missing_folder_is_one_line(env, tmp_path) -> None:
    env["ANALYTICS_WAREHOUSE_URL"] = f"sqlite:///{tmp_path / 'missing' / 'wh.sqlite'}"
    assert_one_line_error(run(["init-db"], env), "does not exist", str(tmp_path / "missing"))


def test_an_unmigrated_warehouse_says_to_run_init_db(env, warehouse_url) -> None:
    env["ANALYTICS_WAREHOUSE_URL"] = warehouse_url
    assert_one_line_error(run(["integrations", "list"], env), "analytics-pipeline init-db")


def test_a_permission_error_is_one_line(env) -> None:
    env["ANALYTICS_WAREHOUSE_URL"] = "sqlite:////sys/analytics-warehouse.sqlite"
    assert_one_line_error(run(["init-db"], env), "cannot be used")
    env.pop("ANALYTICS_WAREHOUSE_URL")
    env["ANALYTICS_DATA_DIR"] = "/sys/analytics-data"  # mkdir there is not permitted
    assert_one_line_error(run(["integrations", "list"], env), "ermission", "/sys/analytics-data")


def _prepared(env: dict[str, str]) -> None:
    assert run(["init-db"], env).returncode == 0
    args = acme_integration()
    added = run(
        [
            "integrations",
            "add",
            "--org",
            args["organization_id"],
            "--id",
            args["integration_id"],
            "--platform",
            "facebook",
            "--account",
            "1000001",
            "--token-env",
            "ACME_TOKEN",
        ],
        env,
    )
    assert added.returncode == 0, added.stderr


def test_a_backfill_before_the_first_partition_is_refused_before_any_run(env) -> None:
    _prepared(env)
    env["ANALYTICS_PARTITIONS_START_DATE"] = "2026-06-01"
    result = run(["backfill", "--start", "2026-05-30", "--end", "2026-06-02"], env)
    assert_one_line_error(result, "before the first partition, 2026-06-01")
    assert not Path(env["DAGSTER_HOME"]).exists()  # no instance touched, so no orphan run


def test_a_backfill_without_the_credential_is_refused_before_any_run(env) -> None:
    _prepared(env)
    result = run(["backfill", "--start", "2026-11-01", "--end", "2026-11-02"], env)
    assert_one_line_error(result, "acme-fb ($ACME_TOKEN)")
    assert not Path(env["DAGSTER_HOME"]).exists()


def test_a_failing_run_prints_its_summary_without_stack_traces(env) -> None:
    _prepared(env)
    env["ACME_TOKEN"] = "revoked-token-9d2e"
    env["ANALYTICS_FACEBOOK_BASE_URL"] = "http://127.0.0.1:9"  # nothing listens: connection refused
    env["ANALYTICS_HTTP_MAX_ATTEMPTS"] = "1"
    env["ANALYTICS_STEP_MAX_RETRIES"] = "0"
    result = run(["backfill", "--start", "2026-11-01", "--end", "2026-11-01"], env)
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    assert "Traceback" not in result.stdout and "Stack Trace" not in result.stdout
    first, *rest = result.stdout.splitlines()
    assert first == f"Dagster instance: {env['DAGSTER_HOME']} (sqlite)"
    assert any("FAILED" in line for line in rest)
    assert "revoked-token-9d2e" not in result.stdout


def test_verbose_shows_the_details(env, tmp_path) -> None:
    env["ANALYTICS_WAREHOUSE_URL"] = f"sqlite:///{tmp_path / 'missing' / 'wh.sqlite'}"
    result = run(["--verbose", "init-db"], env)
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("analytics-pipeline init-db: error:")


def _pipe_to_head(args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`analytics-pipeline ARGS | head -1` in bash; stderr ends with the command's status."""
    script = f'"{COMMAND}" {args} | head -1; echo "status=${{PIPESTATUS[0]}}" >&2'
    return _execute([BASH, "-c", script], env)


def test_output_to_a_closed_pipe_ends_quietly(env, tmp_path) -> None:
    """`integrations list | head -1`: head leaves after one line, the rest of the listing
    meets a closed pipe: no "error:" line, no traceback, the status of a command ended by
    SIGPIPE (141), as other Unix tools."""
    assert run(["init-db"], env).returncode == 0
    engine = sa.create_engine(env["ANALYTICS_WAREHOUSE_URL"])
    with engine.begin() as conn:
        for n in range(1500):  # ~150 KB of listing: more than a pipe holds
            wh.add_integration(
                conn,
                **acme_integration(
                    integration_id=f"acme-{n:04}", external_account_id=str(1_000_000 + n)
                ),
            )
    engine.dispose()
    for args in ("integrations list", "integrations list --json"):
        result = _pipe_to_head(args, env)
        first = result.stdout.splitlines()
        assert len(first) == 1 and first[0].startswith(("ORGANIZATION", "[")), result.stdout
        assert result.stderr == "status=141\n", result.stderr


def test_a_reader_that_closes_at_once_gets_no_error_either(env) -> None:
    """The reader closes its end before the command writes anything (a real pipe, no shell)."""
    assert run(["init-db"], env).returncode == 0
    process = subprocess.Popen(
        [str(COMMAND), "integrations", "list"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=240) == 141
    assert stderr == ""
