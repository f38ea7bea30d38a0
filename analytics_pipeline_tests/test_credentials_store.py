"""The encrypted credential store and the run-time resolution order (SQLite and PostgreSQL):
Fernet at rest, key rotation, store > secrets directory > environment, and no secret in any
table text, repr or error."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from analytics_pipeline import credentials as cr
from analytics_pipeline import warehouse as wh
from analytics_pipeline.platforms.base import Secret
from analytics_pipeline.records import ErrorClass
from analytics_pipeline.warehouse.tables import integration_credentials
from analytics_pipeline_tests.helpers import acme_integration

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
ACCESS = "stored-access-token-8f3a1c"
REFRESH = "stored-refresh-token-77b2e0"
CLIENT_SECRET = "client-secret-value-51d9"
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
IID = "acme-fb"


def _settings(**values: object) -> cr.CredentialSettings:
    return cr.CredentialSettings.model_validate(values)


def _full_bundle() -> cr.CredentialBundle:
    return cr.CredentialBundle(
        access_token=Secret(ACCESS),
        refresh_token=Secret(REFRESH),
        client_id="client-id-1",
        client_secret=Secret(CLIENT_SECRET),
    )


def _save(engine: sa.Engine, cipher: cr.CredentialCipher) -> None:
    cr.save_credential(engine, IID, _full_bundle(), cipher, cr.Expiry(), NOW)


def _table_text(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(integration_credentials)).all()
    return repr(rows)


def test_a_stored_credential_is_encrypted_and_decrypts_with_the_key(engine: sa.Engine) -> None:
    cipher = cr.parse_keys(KEY_A)
    _save(engine, cipher)
    text = _table_text(engine)
    for secret in (ACCESS, REFRESH, CLIENT_SECRET, "client-id-1"):
        assert secret not in text
    loaded = cr.load_credential(engine, IID, cipher)
    assert loaded is not None
    bundle, row = loaded
    assert bundle.access_token is not None and bundle.access_token.reveal() == ACCESS
    assert bundle.refresh_token is not None and bundle.refresh_token.reveal() == REFRESH
    assert bundle.client_id == "client-id-1" and row.version == 1
    for shown in (repr(bundle), repr(row), repr(cipher), str(bundle)):
        assert ACCESS not in shown and REFRESH not in shown and KEY_A not in shown


def test_saving_again_merges_and_bumps_the_version(engine: sa.Engine) -> None:
    cipher = cr.parse_keys(KEY_A)
    expires = NOW + dt.timedelta(hours=2)
    only_refresh = cr.CredentialBundle(refresh_token=Secret(REFRESH), client_id="client-id-1")
    cr.save_credential(engine, IID, only_refresh, cipher, cr.Expiry(refresh=expires), NOW)
    access = cr.CredentialBundle(access_token=Secret(ACCESS))
    cr.save_credential(engine, IID, access, cipher, cr.Expiry(access=expires), NOW)
    loaded = cr.load_credential(engine, IID, cipher)
    assert loaded is not None
    bundle, row = loaded
    assert bundle.present() == ["access token", "refresh token", "client id"]
    assert (row.version, row.access_expires_at, row.refresh_expires_at) == (2, expires, expires)


def test_a_wrong_key_is_a_one_line_error_that_quotes_no_key(engine: sa.Engine) -> None:
    _save(engine, cr.parse_keys(KEY_A))
    with pytest.raises(cr.CredentialKeyError) as caught:
        cr.load_credential(engine, IID, cr.parse_keys(KEY_B))
    message = str(caught.value)
    assert "\n" not in message and "'acme-fb'" in message and "ANALYTICS_CREDENTIALS_KEY" in message
    assert KEY_A not in message and KEY_B not in message


def test_a_malformed_key_is_refused_without_echoing_it() -> None:
    bad = "not-a-fernet-key-but-maybe-a-token-0123456789"
    with pytest.raises(cr.CredentialKeyError, match="key number 2 is not a Fernet key") as caught:
        cr.parse_keys(f"{KEY_A},{bad}")
    assert bad not in str(caught.value) and KEY_A not in str(caught.value)


def test_key_rotation_re_encrypts_every_row_with_the_newest_key(engine: sa.Engine) -> None:
    old = cr.parse_keys(KEY_A)
    _save(engine, old)
    before = _table_text(engine)
    with pytest.raises(cr.CredentialKeyError):  # the new key alone cannot read it yet
        cr.load_credential(engine, IID, cr.parse_keys(KEY_B))
    assert cr.rotate_key(engine, cr.parse_keys(f"{KEY_B},{KEY_A}")) == 1
    assert _table_text(engine) != before
    loaded = cr.load_credential(engine, IID, cr.parse_keys(KEY_B))  # old key dropped
    assert loaded is not None and loaded[0].refresh_token is not None
    assert loaded[0].refresh_token.reveal() == REFRESH


def test_rotation_without_the_old_key_changes_nothing(engine: sa.Engine) -> None:
    _save(engine, cr.parse_keys(KEY_A))
    before = _table_text(engine)
    with pytest.raises(cr.CredentialKeyError, match="'acme-fb'"):
        cr.rotate_key(engine, cr.parse_keys(KEY_B))
    assert _table_text(engine) == before


# --- resolution order -------------------------------------------------------------------------


def test_the_store_wins_over_the_secrets_directory_which_wins_over_the_environment(
    engine: sa.Engine, tmp_path: Path
) -> None:
    env = {"ACME_FB_TOKEN": "token-from-environment"}
    settings = _settings(secrets_dir=tmp_path, credentials_key=KEY_A)
    resolved = cr.resolve_credential(
        engine, IID, "facebook", "ACME_FB_TOKEN", settings, environ=env
    )
    assert (resolved.token.reveal(), resolved.source) == (
        "token-from-environment",
        "$ACME_FB_TOKEN",
    )
    (tmp_path / "ACME_FB_TOKEN").write_text("token-from-file\n")
    resolved = cr.resolve_credential(
        engine, IID, "facebook", "ACME_FB_TOKEN", settings, environ=env
    )
    assert resolved.token.reveal() == "token-from-file"
    assert resolved.source == str(tmp_path / "ACME_FB_TOKEN") and resolved.token_source is None
    _save(engine, cr.parse_keys(KEY_A))
    resolved = cr.resolve_credential(
        engine, IID, "facebook", "ACME_FB_TOKEN", settings, environ=env
    )
    assert (resolved.token.reveal(), resolved.source) == (ACCESS, "encrypted store")
    assert isinstance(resolved.token_source, cr.StoredTokenSource)


def test_a_replaced_secret_file_is_read_at_the_next_resolution(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """No restart: the file is read whenever a client is built."""
    settings = _settings(secrets_dir=tmp_path)
    path = tmp_path / "ACME_FB_TOKEN"
    path.write_text("first-token-value")
    first = cr.resolve_credential(engine, IID, "facebook", "ACME_FB_TOKEN", settings, environ={})
    path.write_text("second-token-value")
    second = cr.resolve_credential(engine, IID, "facebook", "ACME_FB_TOKEN", settings, environ={})
    assert (first.token.reveal(), second.token.reveal()) == (
        "first-token-value",
        "second-token-value",
    )


def test_nothing_anywhere_says_where_it_looked(engine: sa.Engine, tmp_path: Path) -> None:
    settings = _settings(secrets_dir=tmp_path)
    with pytest.raises(cr.CredentialError) as caught:
        cr.resolve_credential(engine, IID, "facebook", "ACME_FB_TOKEN", settings, environ={})
    assert caught.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert str(caught.value) == (
        f"No credential for integration 'acme-fb': nothing in the encrypted store, no file "
        f"{tmp_path / 'ACME_FB_TOKEN'}, and environment variable ACME_FB_TOKEN is not set or "
        "empty where this runs."
    )


def test_a_stored_credential_without_the_key_is_a_configuration_error(
    engine: sa.Engine,
) -> None:
    _save(engine, cr.parse_keys(KEY_A))
    with pytest.raises(cr.CredentialError, match="ANALYTICS_CREDENTIALS_KEY is not set") as caught:
        cr.resolve_credential(
            engine,
            IID,
            "facebook",
            "ACME_FB_TOKEN",
            _settings(),
            environ={"ACME_FB_TOKEN": "x" * 9},
        )
    assert caught.value.error_class is ErrorClass.PERMANENT_CONFIG


def test_the_key_can_come_from_the_secrets_directory(engine: sa.Engine, tmp_path: Path) -> None:
    _save(engine, cr.parse_keys(KEY_A))
    (tmp_path / "ANALYTICS_CREDENTIALS_KEY").write_text(KEY_A + "\n")
    resolved = cr.resolve_credential(
        engine, IID, "facebook", "ACME_FB_TOKEN", _settings(secrets_dir=tmp_path), environ={}
    )
    assert resolved.token.reveal() == ACCESS


def test_settings_are_read_from_the_environment() -> None:
    settings = cr.load_credential_settings(
        {
            "ANALYTICS_SECRETS_DIR": "/run/secrets",
            "ANALYTICS_CREDENTIALS_KEY": KEY_A,
            "ANALYTICS_TOKEN_REFRESH_MARGIN_S": "60",
            "ANALYTICS_TOKEN_EXPIRY_WARN_DAYS": "14",
        }
    )
    assert settings.secret_file("X") == Path("/run/secrets/X")
    assert (settings.token_refresh_margin_s, settings.token_expiry_warn_days) == (60, 14)
    assert KEY_A not in repr(settings)
    assert settings.cipher() is not None


def test_describe_says_where_the_credential_comes_from_and_what_is_due(
    engine: sa.Engine, tmp_path: Path
) -> None:
    def describe(settings: cr.CredentialSettings, env: dict[str, str]) -> str:
        return cr.describe_credential(
            engine, IID, "facebook", "ACME_FB_TOKEN", settings, now=NOW, environ=env
        )

    assert describe(_settings(), {}).startswith("MISSING: No credential for integration")
    assert describe(_settings(), {"ACME_FB_TOKEN": "t" * 20}) == "from $ACME_FB_TOKEN"
    soon = cr.Expiry(access=NOW + dt.timedelta(hours=2), refresh=NOW + dt.timedelta(days=3))
    cr.save_credential(engine, IID, _full_bundle(), cr.parse_keys(KEY_A), soon, NOW)
    assert describe(_settings(credentials_key=KEY_A), {}) == (
        "encrypted store; EXPIRES SOON, re-authorize: refresh token until 2026-11-23 12:00 UTC; "
        "access token until 2026-11-20 14:00 UTC"
    )
    text = describe(_settings(), {})
    assert text.startswith("encrypted store; UNREADABLE here: ANALYTICS_CREDENTIALS_KEY is not set")
    assert ACCESS not in text


def test_deleting_a_credential(engine: sa.Engine) -> None:
    _save(engine, cr.parse_keys(KEY_A))
    with engine.begin() as conn:
        assert wh.delete_credential(conn, IID) is True
        assert wh.delete_credential(conn, IID) is False
        assert wh.get_credential(conn, IID) is None


@pytest.fixture(autouse=True)
def _integration(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        wh.add_integration(conn, **acme_integration(now=NOW))
