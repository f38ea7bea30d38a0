"""`analytics-pipeline integrations set-credential` and `rotate-credential-key` (SQLite and
PostgreSQL): secrets come from files or standard input, never from arguments, and nothing the
command prints or stores shows them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from analytics_pipeline import credentials as cr
from analytics_pipeline import warehouse as wh
from analytics_pipeline.cli import build_parser, main
from analytics_pipeline.warehouse.tables import integration_credentials

KEY_OLD = Fernet.generate_key().decode()
KEY_NEW = Fernet.generate_key().decode()
ACCESS = "cli-access-token-3e9f0a"
REFRESH = "cli-refresh-token-6b2c71"
CLIENT_SECRET = "cli-client-secret-d40e"


@pytest.fixture
def cli(warehouse_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    monkeypatch.setenv("ANALYTICS_WAREHOUSE_URL", warehouse_url)
    monkeypatch.setenv("ANALYTICS_CREDENTIALS_KEY", KEY_OLD)
    monkeypatch.delenv("ANALYTICS_SECRETS_DIR", raising=False)
    assert main(["init-db"]) == 0
    assert (
        main(
            [
                "integrations",
                "add",
                "--org",
                "acme",
                "--id",
                "acme-x",
                "--platform",
                "x",
                "--account",
                "3000001",
                "--token-env",
                "ACME_X_TOKEN",
            ]
        )
        == 0
    )
    (tmp_path / "refresh").write_text(REFRESH + "\n")
    (tmp_path / "secret").write_text(CLIENT_SECRET)
    return warehouse_url, tmp_path


def _stored(url: str, key: str = KEY_OLD) -> tuple[cr.CredentialBundle, wh.StoredCredential]:
    engine = wh.make_engine(url)
    try:
        loaded = cr.load_credential(engine, "acme-x", cr.parse_keys(key))
        assert loaded is not None
        return loaded
    finally:
        engine.dispose()


def _raw_rows(url: str) -> str:
    engine = wh.make_engine(url)
    try:
        with engine.connect() as conn:
            return repr(conn.execute(sa.select(integration_credentials)).all())
    finally:
        engine.dispose()


def test_set_credential_reads_files_and_stdin_and_stores_them_encrypted(
    cli: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, files = cli
    monkeypatch.setattr("sys.stdin", io.StringIO(ACCESS + "\n"))
    code = main(
        [
            "integrations",
            "set-credential",
            "acme-x",
            "--access-token-file",
            "-",
            "--refresh-token-file",
            str(files / "refresh"),
            "--client-secret-file",
            str(files / "secret"),
            "--client-id",
            "client-1",
            "--expires-in",
            "7200",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[0] == (
        "Stored the credential of acme-x encrypted in the warehouse: access token, refresh "
        "token, client id, client secret (refreshed automatically). The next run uses it."
    )
    bundle, row = _stored(url)
    assert bundle.access_token is not None and bundle.access_token.reveal() == ACCESS
    assert bundle.refresh_token is not None and bundle.refresh_token.reveal() == REFRESH
    assert bundle.client_secret is not None and bundle.client_secret.reveal() == CLIENT_SECRET
    assert row.access_expires_at is not None
    text = out + err + _raw_rows(url)
    assert ACCESS not in text and REFRESH not in text and CLIENT_SECRET not in text


def test_secrets_are_never_taken_from_arguments() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["integrations", "set-credential", "acme-x", "--token", "x"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["integrations", "set-credential", "acme-x", "--refresh-token", REFRESH]
        )


def test_a_token_passed_as_a_path_is_not_echoed(
    cli: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    token = "EAAB" + "x" * 60
    assert main(["integrations", "set-credential", "acme-x", "--access-token-file", token]) == 2
    err = capsys.readouterr().err
    assert token not in err and "a value of 64 characters (not shown)" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["acme-x"], "Nothing to store"),
        (["nope", "--client-id", "c"], "No tracked integration 'nope'"),
        (["acme-x", "--access-token-file", "/no/such/file"], "Cannot read '/no/such/file'"),
        (
            ["acme-x", "--access-token-file", "-", "--refresh-token-file", "-"],
            "Only one option can read standard input",
        ),
    ],
)
def test_bad_input_is_one_line(
    cli: tuple[str, Path], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["integrations", "set-credential", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_without_a_key_it_says_how_to_make_one(
    cli: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, files = cli
    monkeypatch.delenv("ANALYTICS_CREDENTIALS_KEY")
    argv = [
        "integrations",
        "set-credential",
        "acme-x",
        "--access-token-file",
        str(files / "secret"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "ANALYTICS_CREDENTIALS_KEY is not set" in err and "generate_key" in err
    assert len(err.strip().splitlines()) == 1


def test_a_meta_integration_takes_no_refresh_token(
    cli: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, files = cli
    assert (
        main(
            [
                "integrations",
                "add",
                "--org",
                "acme",
                "--id",
                "acme-fb",
                "--platform",
                "facebook",
                "--account",
                "1000001",
                "--token-env",
                "ACME_FB_TOKEN",
            ]
        )
        == 0
    )
    argv = [
        "integrations",
        "set-credential",
        "acme-fb",
        "--refresh-token-file",
        str(files / "refresh"),
    ]
    assert main(argv) == 2
    assert "facebook tokens are not refreshed with OAuth" in capsys.readouterr().err


def test_rotate_credential_key_then_drop_the_old_key(
    cli: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url, files = cli
    argv = [
        "integrations",
        "set-credential",
        "acme-x",
        "--refresh-token-file",
        str(files / "refresh"),
    ]
    assert main([*argv, "--client-id", "client-1"]) == 0
    monkeypatch.setenv("ANALYTICS_CREDENTIALS_KEY", f"{KEY_NEW},{KEY_OLD}")
    assert main(["integrations", "rotate-credential-key"]) == 0
    assert "Re-encrypted 1 stored credential(s)" in capsys.readouterr().out
    bundle, _ = _stored(url, KEY_NEW)
    assert bundle.refresh_token is not None and bundle.refresh_token.reveal() == REFRESH


def test_clear_removes_the_stored_credential(
    cli: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, files = cli
    argv = [
        "integrations",
        "set-credential",
        "acme-x",
        "--access-token-file",
        str(files / "secret"),
    ]
    assert main(argv) == 0
    assert main(["integrations", "set-credential", "acme-x", "--clear"]) == 0
    assert "removed; $ACME_X_TOKEN is used" in capsys.readouterr().out
    assert _raw_rows(url) == "[]"
