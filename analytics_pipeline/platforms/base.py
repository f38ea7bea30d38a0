"""The common interface every platform client implements, its errors and the token wrapper.

Replies are parsed at the boundary into the frozen records of `analytics_pipeline.records`;
nothing past a platform module ever sees raw JSON. Assets talk only to `PlatformClient`, never
to a concrete platform, so adding a platform means adding one module (plus its sandbox part).
"""

from __future__ import annotations

import abc
import datetime as dt
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from analytics_pipeline.records import (
    AccountMetrics,
    ContentItem,
    ErrorClass,
    MetricsBatch,
    date_range,
)

_KNOWN_SECRETS: set[str] = set()
_KNOWN_SECRETS_LOCK = threading.Lock()
_MIN_SECRET_LENGTH = 8  # shorter values would mask ordinary words


def known_secrets() -> frozenset[str]:
    """Every token value wrapped in a `Secret` in this process: `redact` masks them all, so a
    token quoted by an unexpected exception is still caught."""
    with _KNOWN_SECRETS_LOCK:
        return frozenset(_KNOWN_SECRETS)


class Secret:
    """An access token that never prints itself (repr, str, format, logging all show ***)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if len(value) >= _MIN_SECRET_LENGTH:
            with _KNOWN_SECRETS_LOCK:
                _KNOWN_SECRETS.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class RefreshGrant:
    """What an OAuth 2.0 `refresh_token` grant sends (RFC 6749 section 6)."""

    refresh_token: Secret = field(repr=False)
    client_id: str
    client_secret: Secret | None = field(default=None, repr=False)


@dataclass(frozen=True)
class IssuedTokens:
    """A token endpoint's answer. `refresh_token` is None when the platform kept the old one;
    the lifetimes are seconds from `issued_at` (None: not said)."""

    access_token: Secret = field(repr=False)
    issued_at: dt.datetime
    expires_in: float | None = None
    refresh_token: Secret | None = field(default=None, repr=False)
    refresh_expires_in: float | None = None


# The client's own call of its platform's token endpoint (platforms/oauth.py does the HTTP).
TokenExchange = Callable[[RefreshGrant], IssuedTokens]


class TokenSource(Protocol):
    """Where a client gets its access token when the token can change during a run (an OAuth
    credential with a refresh token, kept in the encrypted store): see
    `analytics_pipeline.credentials`. Both methods may raise `PlatformError` (a refresh refused:
    PERMANENT_CREDENTIAL; the token endpoint unreachable: TRANSIENT)."""

    def current(self, exchange: TokenExchange | None) -> Secret:
        """A usable access token, refreshed first when it expires within the margin."""
        ...

    def renew(self, rejected: Secret, exchange: TokenExchange | None) -> Secret | None:
        """A new access token after the platform rejected `rejected` (401), or None when this
        credential cannot be refreshed. Never spends a refresh token another process already
        spent: if the stored token changed since `rejected`, that one is returned."""
        ...


@dataclass(frozen=True)
class Account:
    """One tracked integration as the clients see it (the token already resolved).

    `token` is the token at hand when the client was built; with a `token_source` the client
    asks the source instead (`current_token`, `renewed_token`), which may refresh it."""

    organization_id: str
    integration_id: str
    platform: str
    external_account_id: str
    token: Secret = field(repr=False)
    token_source: TokenSource | None = field(default=None, repr=False, compare=False)

    def current_token(self, exchange: TokenExchange | None = None) -> Secret:
        if self.token_source is None:
            return self.token
        return self.token_source.current(exchange)

    def renewed_token(self, rejected: Secret, exchange: TokenExchange | None) -> Secret | None:
        """A fresh token after `rejected` got a 401, or None (no source, or not refreshable)."""
        if self.token_source is None:
            return None
        return self.token_source.renew(rejected, exchange)


@dataclass(frozen=True)
class TokenStatus:
    """What a platform says about the lifetime of the token it was called with (Meta's
    `debug_token`), parsed at the boundary. A limit is None when the platform reports none
    (Meta's `expires_at: 0` means "never")."""

    is_valid: bool
    expires_at: dt.datetime | None = None
    # After this the token can no longer read data (Meta: 90 days without the user's return).
    data_access_expires_at: dt.datetime | None = None
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccountDescription:
    """What the platform says about the tracked account (`PlatformClient.describe_account`)."""

    account_id: str
    name: str
    # A second identifier an operator recognizes: "@handle", a vanity name, a page link.
    handle: str | None = None


class PlatformError(Exception):
    """An error reply, already classified and with every secret redacted from `message`."""

    def __init__(
        self,
        error_class: ErrorClass,
        message: str,
        *,
        platform: str,
        code: str | None = None,
        http_status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message
        self.platform = platform
        self.code = code
        self.http_status = http_status
        self.retry_after = retry_after

    def __str__(self) -> str:
        code = f" code={self.code}" if self.code else ""
        return f"{self.platform} {self.error_class.value}{code}: {self.message}"


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """The dates `start`..`end`, both included; ValueError when `start` is after `end`."""
    if start > end:
        raise ValueError(f"a date range must not end before it starts: {start} > {end}")
    return list(date_range(start, end))


class PlatformClient(abc.ABC):
    """What every platform implements, for ONE account: the client is created for it
    (`platforms.create_client(account, settings)`) and every call is about that account, with
    its token. One instance serves one worker thread at a time."""

    platform: str
    # True when content metrics are cumulative lifetime totals that cannot be asked for a past
    # day (Meta post insights, X): the assets then only record a snapshot for recent days.
    content_metrics_are_lifetime: bool = True

    def __init__(self, account: Account) -> None:
        if account.platform != self.platform:
            raise ValueError(
                f"a {self.platform} client cannot serve integration {account.integration_id!r} "
                f"of platform {account.platform!r}"
            )
        self.account = account

    def __repr__(self) -> str:
        # Account's repr leaves the token out.
        return f"{type(self).__name__}({self.account!r})"

    __str__ = __repr__

    def list_content(self, day: dt.date) -> Iterator[ContentItem]:
        """Content the account published on `day` (UTC), as a generator over result pages:
        `list_content_between(day, day)`."""
        return self.list_content_between(day, day)

    @abc.abstractmethod
    def list_content_between(self, start: dt.date, end: dt.date) -> Iterator[ContentItem]:
        """Every item the account published on the UTC days `start`..`end` (both included), as
        a generator over result pages, with as few requests as the platform allows (one walk
        of its listing, split into chunks only where the platform caps a range). Each item
        once; the same filtering rules as a one-day listing. `start > end` is a ValueError."""

    @abc.abstractmethod
    def fetch_content_metrics(
        self,
        content_ids: Sequence[str],
        day: dt.date,
        *,
        permalinks: Mapping[str, str | None] | None = None,
    ) -> MetricsBatch:
        """Metrics of the given items for `day`; many items per API call.

        `permalinks`: what the warehouse stored for the items (from earlier listings), for a
        platform that can save a discovery call with it (Facebook reads a reel's video id from
        its `/reel/<id>` permalink); the others ignore it."""

    def fetch_account_metrics(self, day: dt.date, *, include_snapshot: bool) -> AccountMetrics:
        """Account-level metrics for `day`; `followers_total` only when include_snapshot:
        `fetch_account_metrics_between(day, day, snapshot_day=day or None)[day]`."""
        snapshot_day = day if include_snapshot else None
        return self.fetch_account_metrics_between(day, day, snapshot_day=snapshot_day)[day]

    def fetch_account_metrics_between(
        self, start: dt.date, end: dt.date, *, snapshot_day: dt.date | None
    ) -> dict[dt.date, AccountMetrics]:
        """One AccountMetrics per UTC day `start`..`end` (both included; a day the platform
        said nothing about is all NULL), in as few requests as the platform allows (ranges
        split into chunks of the platform's maximum where it has one).

        `followers_total` (the CURRENT total, a snapshot) is filled only on `snapshot_day`,
        and only when it is given and within the range; every day carries the metric names
        the platform rejected (`rejected_metrics`). `start > end` is a ValueError."""
        raise NotImplementedError(f"{self.platform} has no account-level metrics yet")

    @abc.abstractmethod
    def describe_account(self) -> AccountDescription:
        """ONE request with the account's token that reads the account itself, with a field or
        endpoint that needs the same access as ingestion (a Page's followers, an administered
        LinkedIn organization, an X user): proves that the id names an account of this platform
        and that the token reaches it. Errors are `PlatformError`s, classified as usual (a
        revoked token or a missing role is PERMANENT_CREDENTIAL; an id of another kind of object
        is PERMANENT_CONFIG with code "wrong_account_kind")."""

    def token_status(self) -> TokenStatus | None:
        """ONE request asking the platform how long the client's token stays usable, for the
        platforms that report it (Meta); None for the others (no request)."""
        return None

    @property
    @abc.abstractmethod
    def api_calls(self) -> int:
        """HTTP requests this client has sent so far (retries included)."""
