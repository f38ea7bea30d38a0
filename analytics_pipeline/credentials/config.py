"""The credential settings (`ANALYTICS_*`), read when a client is built, not at import time:
a changed secrets directory or key file is picked up by the next run without a restart."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pydantic
from pydantic import Field

from analytics_pipeline.credentials.crypto import KEY_ENV, CredentialCipher, parse_keys
from analytics_pipeline.settings import ENV_PREFIX, read_section


class CredentialSettings(pydantic.BaseModel):
    """Where credentials come from (see `analytics_pipeline.credentials`)."""

    model_config = pydantic.ConfigDict(frozen=True)

    secrets_dir: Path | None = Field(
        default=None, description="One file per credential name (Docker/Kubernetes secrets)."
    )
    credentials_key: pydantic.SecretStr | None = Field(
        default=None, description="Fernet key(s) of the encrypted store, newest first."
    )
    token_refresh_margin_s: int = Field(
        default=300, ge=0, le=86_400, description="Refresh an access token this long before."
    )
    token_expiry_warn_days: int = Field(
        default=7,
        ge=0,
        le=365,
        description="Warn this many days before a token (Meta, a refresh token) expires.",
    )

    def secret_file(self, name: str) -> Path | None:
        """`<secrets_dir>/<name>` when the directory is configured, else None."""
        return None if self.secrets_dir is None else self.secrets_dir / name

    def cipher(self) -> CredentialCipher | None:
        """The store's cipher from ANALYTICS_CREDENTIALS_KEY, else from the secrets
        directory's file of that name; None when neither is set."""
        if self.credentials_key is not None:
            return parse_keys(self.credentials_key.get_secret_value())
        path = self.secret_file(KEY_ENV)
        if path is not None and path.is_file():
            return parse_keys(path.read_text())
        return None


def load_credential_settings(environ: Mapping[str, str] | None = None) -> CredentialSettings:
    """From the `ANALYTICS_*` variables (SettingsError names a malformed one)."""
    return read_section(CredentialSettings, ENV_PREFIX, environ)
