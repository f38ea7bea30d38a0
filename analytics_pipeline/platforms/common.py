"""Small pieces every platform client shares, whatever its wire format.

- Reading replies: `as_int` (a JSON count, or None), `json_or_none`, `excerpt` (a short redacted
  quote of a body for an error message).
- Building errors: `invalid_response`, `status_error` and `is_transient_status` for a reply
  that carries no platform error object.
- Time: `utc_now`, `day_start` (midnight UTC).
- Paging: `capped_pages`, the page counter that refuses to page on past `max_pages`.
- `SessionClient`: a `PlatformClient` whose HTTP goes through one `ApiSession`.

Each platform keeps its own wire format (error codes, query syntax, field names) in its module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Literal

import requests

from analytics_pipeline.platforms.base import PlatformClient, PlatformError, TokenExchange
from analytics_pipeline.platforms.http import ApiSession
from analytics_pipeline.platforms.redact import redact
from analytics_pipeline.records import ErrorClass

__all__ = [
    "EXCERPT_CHARS",
    "SessionClient",
    "as_int",
    "capped_pages",
    "day_start",
    "excerpt",
    "invalid_response",
    "is_transient_status",
    "json_or_none",
    "status_error",
    "utc_now",
]

EXCERPT_CHARS = 200


def as_int(value: Any, *, text: Literal["no", "unsigned", "signed"] = "no") -> int | None:
    """An integer from a JSON value, or None: booleans and fractions are not counts.

    `text` says which strings count too: "no" none, "unsigned" digits only (`"42"`), "signed"
    digits with a leading minus (`"-3"`). Surrounding white space is allowed in both.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and text != "no":
        digits = value.strip()
        if text == "signed":
            digits = digits.lstrip("-")
        if digits.isdigit():
            return int(value)
    return None


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """A short, single-line, redacted excerpt of a reply body for an error message."""
    flat = " ".join(text.split())
    return redact(flat[:limit] + ("..." if len(flat) > limit else ""))


def json_or_none(response: requests.Response) -> Any:
    """The decoded JSON body, or None when the body is not JSON."""
    try:
        return response.json()
    except ValueError:  # includes JSONDecodeError
        return None


def invalid_response(platform: str, message: str) -> PlatformError:
    """INVALID_RESPONSE: a reply we cannot use (a bug on one side, never retried)."""
    return PlatformError(ErrorClass.INVALID_RESPONSE, redact(message), platform=platform)


def is_transient_status(status: int) -> bool:
    """HTTP statuses worth a retry when the body says nothing better: 5xx, 408, 429."""
    return status >= 500 or status in (408, 429)


def status_error(
    error_class: ErrorClass, platform: str, status: int, message: str
) -> PlatformError:
    """An error known only by its HTTP status (`code="http_<status>"`); `message` must already
    be redacted (an `excerpt` is)."""
    return PlatformError(
        error_class, message, platform=platform, code=f"http_{status}", http_status=status
    )


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def day_start(day: dt.date) -> dt.datetime:
    """Midnight UTC at the start of `day`."""
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def capped_pages(platform: str, max_pages: int, subject: str) -> Iterator[int]:
    """Page numbers 1..max_pages for a listing loop; asking for one more raises
    INVALID_RESPONSE "`subject` more than max_pages=N pages; refusing to page on" instead of
    paging forever. `subject` names what needs the pages, verb included ("posts of ... need")."""
    yield from range(1, max_pages + 1)
    raise invalid_response(
        platform, f"{subject} more than max_pages={max_pages} pages; refusing to page on"
    )


class SessionClient(PlatformClient):
    """A `PlatformClient` whose requests all go through one `ApiSession` (`self._session`).

    `authorized_request` sends a request with the account's current token; a platform that
    supports OAuth refresh overrides `token_exchange`, and then a 401 is answered by ONE
    refresh (through the account's `TokenSource`) and one more attempt."""

    _session: ApiSession

    def token_exchange(self) -> TokenExchange | None:
        """The platform's refresh-token grant, or None when it has none (Meta)."""
        return None

    def authorized_request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        exchange = self.token_exchange()
        token = self.account.current_token(exchange)
        try:
            return self._session.request(method, url, token=token, **kwargs)
        except PlatformError as error:
            if error.error_class is not ErrorClass.PERMANENT_CREDENTIAL or error.http_status != 401:
                raise
            fresh = self.account.renewed_token(token, exchange)
            if fresh is None:
                raise
        return self._session.request(method, url, token=fresh, **kwargs)

    @property
    def api_calls(self) -> int:
        return self._session.calls

    @property
    def session(self) -> ApiSession:
        return self._session

    def close(self) -> None:
        self._session.close()
