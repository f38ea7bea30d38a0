"""What the encrypted store keeps for one integration: the secrets, as one JSON document.

Only ciphertext of this document reaches the warehouse. The expiry times are kept beside it in
plain columns (they are not secret), so `CredentialBundle` carries secrets and the client id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from analytics_pipeline.platforms.base import IssuedTokens, RefreshGrant, Secret

SECRET_FIELDS = ("access_token", "refresh_token", "client_secret")


@dataclass(frozen=True)
class CredentialBundle:
    access_token: Secret | None = field(default=None, repr=False)
    refresh_token: Secret | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: Secret | None = field(default=None, repr=False)

    @property
    def refreshable(self) -> bool:
        """A refresh token and a client id: enough for a refresh-token grant."""
        return bool(self.refresh_token) and bool(self.client_id)

    def grant(self) -> RefreshGrant:
        if self.refresh_token is None or not self.client_id:
            raise ValueError("this credential has no refresh token or client id")
        return RefreshGrant(self.refresh_token, self.client_id, self.client_secret)

    def with_issued(self, issued: IssuedTokens) -> CredentialBundle:
        """After a refresh: the new access token, and the new refresh token when one came."""
        return replace(
            self,
            access_token=issued.access_token,
            refresh_token=issued.refresh_token or self.refresh_token,
        )

    def merged(self, update: CredentialBundle) -> CredentialBundle:
        """`update`'s fields where it has one, else this bundle's."""
        return CredentialBundle(
            access_token=update.access_token or self.access_token,
            refresh_token=update.refresh_token or self.refresh_token,
            client_id=update.client_id or self.client_id,
            client_secret=update.client_secret or self.client_secret,
        )

    def present(self) -> list[str]:
        """The names of the fields that are set (for messages; never their values)."""
        names = ("access_token", "refresh_token", "client_id", "client_secret")
        return [name.replace("_", " ") for name in names if getattr(self, name)]

    def to_json(self) -> str:
        out: dict[str, Any] = {}
        for name in SECRET_FIELDS:
            value = getattr(self, name)
            if value:
                out[name] = value.reveal()
        if self.client_id:
            out["client_id"] = self.client_id
        return json.dumps(out, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CredentialBundle:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("a stored credential is not a JSON object")
        secrets = {name: Secret(str(raw[name])) for name in SECRET_FIELDS if raw.get(name)}
        client_id = raw.get("client_id")
        return cls(client_id=str(client_id) if client_id else None, **secrets)
