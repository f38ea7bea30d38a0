"""Credentials of the tracked integrations: where they come from, how they are kept, refreshed.

Dagster-free. Imports the warehouse (the store's rows) and `platforms.base` (Secret, the
`TokenSource` protocol); neither of them imports this package.

- `resolve.resolve_credential`: the run-time resolution order (encrypted store, secrets
  directory, environment variable);
- `store`: the encrypted store (save, load, key rotation) and `StoredTokenSource`, the locked
  OAuth refresh;
- `crypto`: Fernet / MultiFernet with the key(s) of ANALYTICS_CREDENTIALS_KEY;
- `meta`: the warning before a Meta token expires (debug_token).
"""

from analytics_pipeline.credentials.bundle import CredentialBundle
from analytics_pipeline.credentials.config import CredentialSettings, load_credential_settings
from analytics_pipeline.credentials.crypto import (
    KEY_ENV,
    CredentialCipher,
    CredentialKeyError,
    parse_keys,
)
from analytics_pipeline.credentials.resolve import (
    CredentialError,
    ResolvedCredential,
    describe_credential,
    resolve_credential,
)
from analytics_pipeline.credentials.store import (
    Expiry,
    StoredTokenSource,
    load_credential,
    rotate_key,
    save_credential,
)

__all__ = [
    "KEY_ENV",
    "CredentialBundle",
    "CredentialCipher",
    "CredentialError",
    "CredentialKeyError",
    "CredentialSettings",
    "Expiry",
    "ResolvedCredential",
    "StoredTokenSource",
    "describe_credential",
    "load_credential",
    "load_credential_settings",
    "parse_keys",
    "resolve_credential",
    "rotate_key",
    "save_credential",
]
