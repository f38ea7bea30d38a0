"""Keeping access tokens out of logs, exception messages and URLs.

Tokens travel only in the `Authorization` header (see `http.ApiSession`), but platforms echo
URLs back (Graph's `paging.next` carries `access_token=`), error messages can quote a request,
and exceptions from `requests` print URLs. Everything that leaves a platform module as text goes
through `redact` first; `RedactingFilter` is the last line of defence on the loggers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote_plus

from analytics_pipeline.platforms.base import known_secrets

__all__ = [
    "MASK",
    "SENSITIVE_QUERY_PARAMS",
    "RedactingFilter",
    "redact",
    "redacting_logger",
    "strip_access_token",
]

MASK = "***"

# Query parameters whose value is a credential (lower case).
SENSITIVE_QUERY_PARAMS: frozenset[str] = frozenset(
    {"access_token", "appsecret_proof", "client_secret", "fb_exchange_token", "input_token"}
)

_PARAM_NAMES = "|".join(sorted(SENSITIVE_QUERY_PARAMS))
# `access_token=VALUE` in a query string, a form body or free text (value up to a separator).
# No word boundary: inside a percent-encoded URL the name follows `%26` directly.
_QUERY_VALUE = re.compile(rf"(?i)({_PARAM_NAMES})(=|%3D)[^&\s\"'<>#,;)\]}}]+")
# `"access_token": "VALUE"` in an echoed JSON document.
_JSON_VALUE = re.compile(rf"(?i)(\"(?:{_PARAM_NAMES})\"\s*:\s*\")[^\"]*")
# `Bearer VALUE` in an echoed header. (Not `OAuth VALUE`: Graph's own messages say "Invalid
# OAuth access token", and we never send that header form.)
_AUTH_HEADER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/=%|]+")


def _secret_forms(secret: str) -> set[str]:
    """The ways a secret can appear in text: raw, and percent-encoded as in a URL or a form."""
    return {secret, quote(secret, safe=""), quote_plus(secret, safe="")}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every known secret value and every credential-looking value replaced by ***.

    Known `secrets`, and every token this process wrapped in a `base.Secret`, are replaced
    wherever they appear (also percent-encoded), longest first so a secret containing another is
    fully masked. In addition, whether known or not, the values of
    `access_token=`, `appsecret_proof=` (and the other SENSITIVE_QUERY_PARAMS), JSON
    `"access_token": "..."` members and `Bearer ...` credentials are masked.
    """
    # Patterns first: a known secret replaced first could break up `access_token=` and hide
    # the value that follows it from the pattern.
    text = _QUERY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _JSON_VALUE.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    forms: set[str] = set()
    for secret in (*secrets, *known_secrets()):
        if secret:
            forms |= _secret_forms(secret)
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def strip_access_token(url: str) -> str:
    """`url` without its credential query parameters (access_token, appsecret_proof, ...).

    Every other parameter is kept byte for byte (no decode/re-encode round trip), so a Graph
    `paging.next` cursor URL can be followed with the token sent in a header instead.
    """
    base, sep, rest = url.partition("?")
    if not sep:
        return url
    query, hash_sep, fragment = rest.partition("#")
    kept = [
        part
        for part in query.split("&")
        if part and unquote_plus(part.partition("=")[0]).lower() not in SENSITIVE_QUERY_PARAMS
    ]
    rebuilt = base + ("?" + "&".join(kept) if kept else "")
    return rebuilt + (hash_sep + fragment if hash_sep else "")


class RedactingFilter(logging.Filter):
    """Applies `redact` to a record's final message and to its formatted traceback.

    The message is rendered once (`msg % args`), redacted, and stored back with `args` cleared,
    so handlers further down never see the raw values. Install it on the logger that emits the
    records (filters on a logger do not apply to records propagated from child loggers).
    """

    def __init__(self, secrets: Iterable[str] = (), name: str = "") -> None:
        super().__init__(name)
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            message = str(record.msg)
        record.msg = redact(message, self._secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self._secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self._secrets)
        return True


def redacting_logger(name: str) -> logging.Logger:
    """`logging.getLogger(name)` with one `RedactingFilter` on it (added once per process)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger
