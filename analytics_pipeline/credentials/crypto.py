"""Encryption of stored credentials: Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`.

The key comes from `ANALYTICS_CREDENTIALS_KEY` (or a file of that name in the secrets
directory): one or more url-safe base64 Fernet keys separated by commas, NEWEST FIRST. The
newest encrypts; every listed key decrypts (MultiFernet), so a key is rotated by putting a new
key in front, running `analytics-pipeline integrations rotate-credential-key` (re-encrypts every
row with the newest key), then dropping the old key. Generate a key with
`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.

Errors never quote a key nor a ciphertext.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

KEY_ENV = "ANALYTICS_CREDENTIALS_KEY"


class CredentialKeyError(ValueError):
    """The encryption key is missing, malformed, or cannot decrypt a stored credential."""


class CredentialCipher:
    """Encrypts with the newest key, decrypts with any of them."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise CredentialKeyError(f"{KEY_ENV} lists no key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])
        self.key_count = len(keys)

    def __repr__(self) -> str:
        return f"CredentialCipher({self.key_count} key(s))"

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode("ascii")

    def decrypt(self, ciphertext: str, what: str) -> str:
        """The plaintext; CredentialKeyError naming `what` when no key can decrypt it."""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise CredentialKeyError(_undecryptable(what)) from None

    def rotate(self, ciphertext: str, what: str) -> str:
        """The same plaintext encrypted with the newest key."""
        try:
            return self._fernet.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise CredentialKeyError(_undecryptable(what)) from None


def parse_keys(text: str) -> CredentialCipher:
    """A cipher from the comma-separated keys of `text`; CredentialKeyError (not quoting the
    value) when one of them is not a Fernet key."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    keys = []
    for position, part in enumerate(parts, start=1):
        try:
            Fernet(part.encode("ascii"))
        except (ValueError, UnicodeError):
            raise CredentialKeyError(
                f"{KEY_ENV}: key number {position} is not a Fernet key (32 url-safe base64 "
                "bytes, 44 characters); generate one with "
                '`python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"`'
            ) from None
        keys.append(part.encode("ascii"))
    return CredentialCipher(keys)


def _undecryptable(what: str) -> str:
    return (
        f"{what} cannot be decrypted with any key in {KEY_ENV}: was the key that encrypted it "
        "removed before `analytics-pipeline integrations rotate-credential-key` ran? Put it back "
        "(after the new key), or set the credential again"
    )
