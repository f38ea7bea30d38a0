"""The one retrying HTTP session every platform client uses.

Policy, in one place so every platform behaves the same:
- The access token travels only in the `Authorization: Bearer` header; a URL or params naming
  `access_token` is refused, so a token can never end up in a URL, a log line or a proxy log.
- Every request has a connect and a read timeout.
- The platform module classifies each reply (`classify`), by the platform's own error code, not
  by HTTP status alone. Only TRANSIENT errors (and connection errors / timeouts) are retried,
  at most `max_attempts` attempts in all, with exponential backoff and full jitter; a
  `Retry-After` header or `PlatformError.retry_after` replaces the backoff. A wait longer than
  `max_wait_s` is not slept: the error is raised at once and the run retries later.
- Every other class (credential, object, invalid response) is raised after exactly one attempt.
- `throttle(resp)` turns usage headers into a pause before the next request.
- A `Pacer` given as `sleep` (one per run attempt, shared by every session of the run) makes
  every pause wake up at once on a stop (`RunStopped`, also raised before any further request)
  and caps the pauses of the whole run: a pause that would exceed the run's budget raises
  `WaitBudgetSpent` (a transient error the run defers to a later run) instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from analytics_pipeline.platforms.base import PlatformError, Secret
from analytics_pipeline.platforms.redact import redact, redacting_logger
from analytics_pipeline.records import ErrorClass

__all__ = [
    "ApiSession",
    "Classifier",
    "Pacer",
    "RetryConfig",
    "RunStopped",
    "Throttle",
    "WaitBudgetSpent",
    "backoff_delay",
    "parse_retry_after",
    "safe_url",
]

logger = redacting_logger("analytics_pipeline.http")

Classifier = Callable[[requests.Response], PlatformError | None]
Throttle = Callable[[requests.Response], float]

# Failures of the transport itself that are worth another attempt.
_TRANSIENT_EXCEPTIONS: tuple[type[Exception], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


@dataclass(frozen=True)
class RetryConfig:
    max_attempts: int = 5  # total attempts per request, transient errors only
    backoff_base_s: float = 1.0  # full jitter: uniform(0, min(backoff_max_s, base * 2**n))
    backoff_max_s: float = 60.0
    # Longest single wait we accept (Retry-After, usage headers, BUC regain time). A longer one
    # raises the transient PlatformError at once (the run retries later) instead of sleeping.
    max_wait_s: float = 300.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if min(self.backoff_base_s, self.backoff_max_s, self.max_wait_s) < 0:
            raise ValueError("backoff and wait bounds must be >= 0")
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ValueError("timeouts must be > 0")


class RunStopped(Exception):
    """The run is being stopped: raised instead of sending another request or sleeping on."""


class WaitBudgetSpent(PlatformError):
    """A pause would exceed the run's rate-limit wait budget: the work is deferred to a later run
    like a daily quota (transient, but not retried within this run)."""


class Pacer:
    """The `sleep` of every session of one run attempt: pauses wake up on `stop`, and their
    total is capped by `wait_budget_s` (None: no cap), counting the `waited_s` earlier attempts
    of the run spent. Thread-safe (one per run attempt, many workers)."""

    def __init__(
        self, stop: threading.Event, wait_budget_s: float | None = None, waited_s: float = 0.0
    ) -> None:
        self.stop = stop
        self.wait_budget_s = wait_budget_s
        self._lock = threading.Lock()
        self.waited_s = waited_s

    def check(self) -> None:
        """Raise `RunStopped` once a stop was asked for."""
        if self.stop.is_set():
            raise RunStopped("the run is being stopped")

    def reserve(self, seconds: float) -> bool:
        """Count `seconds` against the budget; False (nothing counted) when they do not fit."""
        with self._lock:
            budget = self.wait_budget_s
            if budget is not None and self.waited_s + seconds > budget:
                return False
            self.waited_s += seconds
            return True

    def __call__(self, seconds: float) -> None:
        self.check()
        if self.stop.wait(seconds):
            raise RunStopped("the run is being stopped")


def backoff_delay(retry: RetryConfig, retry_number: int, rng: random.Random | None = None) -> float:
    """Full-jitter exponential backoff before retry number `retry_number` (0 = first retry)."""
    ceiling = min(retry.backoff_max_s, retry.backoff_base_s * 2 ** min(retry_number, 30))
    return (rng or random).uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date); None if absent
    or unparseable. A date in the past means 0."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def safe_url(url: str) -> str:
    """A URL fit for logs and messages: scheme, host and path, then query parameter NAMES only
    (`...?fields&since&limit`). Values can hold cursors or, from a platform, a token."""
    parts = urlsplit(url)
    names = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
    query = "?" + "&".join(names) if names else ""
    return redact(f"{parts.scheme}://{parts.hostname or ''}{_port(parts.port)}{parts.path}{query}")


def _log_url(method: str, url: str, params: Any) -> str:
    """`safe_url` of the URL as it will be sent (params merged in)."""
    try:
        prepared = requests.Request(method, url, params=params).prepare().url
    except (requests.RequestException, ValueError):  # reported by the attempt itself
        prepared = None
    return safe_url(prepared or url)


def _port(port: int | None) -> str:
    return f":{port}" if port else ""


def _mentions_access_token(url: str, params: Any) -> bool:
    if "access_token" in url.lower():
        return True
    if params is None:
        return False
    if isinstance(params, Mapping):
        items: list[tuple[Any, Any]] = list(params.items())
    elif isinstance(params, str | bytes):
        return b"access_token" in (params if isinstance(params, bytes) else params.encode()).lower()
    else:
        items = list(params)
    return any("access_token" in str(key).lower() for key, _ in items)


class ApiSession:
    """A `requests` session with the retry, timeout, token and logging policy described above.

    One instance serves one worker thread at a time. `calls` counts HTTP requests actually sent
    (every attempt), `retries` the retries taken, `waited_s` the time spent in backoff and
    throttle pauses: assets read them for run metadata.
    """

    def __init__(
        self,
        platform: str,
        classify: Classifier,
        retry: RetryConfig = RetryConfig(),  # frozen, so a shared default is safe
        *,
        throttle: Throttle | None = None,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.platform = platform
        self.retry = retry
        self._classify = classify
        self._throttle = throttle
        self._sleep = sleep
        self._http = session if session is not None else requests.Session()
        self._owns_http = session is None
        self._rng = rng or random.Random()  # jitter, not cryptography
        self._pending_pause = 0.0
        self.calls = 0
        self.retries = 0
        self.waited_s = 0.0

    def __enter__(self) -> ApiSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        token: Secret,
        params: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send one logical request (several attempts for transient errors); return the
        successful response or raise the classified, redacted `PlatformError`."""
        if _mentions_access_token(url, params):
            raise ValueError("access tokens go in the Authorization header, never in the URL")
        if isinstance(data, Mapping) and any("access_token" in str(k).lower() for k in data):
            raise ValueError("access tokens go in the Authorization header, never in the body")
        if not token:
            raise ValueError("an access token is required")
        send_headers = {**(headers or {}), "Authorization": f"Bearer {token.reveal()}"}
        log_url = _log_url(method, url, params)
        secrets = (token.reveal(),)
        attempt = 0
        while True:
            attempt += 1
            if isinstance(self._sleep, Pacer):
                self._sleep.check()
            self._pause_before_request()
            outcome = self._attempt(
                method, url, params, data, send_headers, secrets, attempt, log_url
            )
            if isinstance(outcome, requests.Response):
                return outcome
            if outcome.error_class is not ErrorClass.TRANSIENT:
                raise outcome
            if attempt >= self.retry.max_attempts:
                raise outcome
            self.wait_before_retry(attempt - 1, outcome)

    def wait_before_retry(self, retry_number: int, error: PlatformError) -> None:
        """Sleep before retry `retry_number` (0-based) after the transient `error`.

        The platform's own wait (`error.retry_after`) wins over the jittered backoff; a wait
        longer than `max_wait_s` raises `error` instead of sleeping. Platform modules call this
        too, for per-item retries inside a batch reply.
        """
        delay = error.retry_after
        if delay is None:
            delay = backoff_delay(self.retry, retry_number, self._rng)
        # A usage-header pause due before the next request is part of this wait, not added.
        delay, self._pending_pause = max(delay, self._pending_pause), 0.0
        if delay > self.retry.max_wait_s:
            error.retry_after = max(delay, error.retry_after or 0.0)
            raise error
        self.retries += 1
        self._wait(delay)

    def _attempt(
        self,
        method: str,
        url: str,
        params: Any,
        data: Any,
        headers: dict[str, str],
        secrets: tuple[str, ...],
        attempt: int,
        log_url: str,
    ) -> requests.Response | PlatformError:
        """One HTTP attempt: the response if `classify` accepts it, else the error (raised
        directly only for a request that can never work, such as an invalid URL)."""
        self.calls += 1
        try:
            response = self._http.request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=(self.retry.connect_timeout_s, self.retry.read_timeout_s),
            )
        except _TRANSIENT_EXCEPTIONS as exc:
            logger.debug("%s %s -> %s (attempt %d)", method, log_url, type(exc).__name__, attempt)
            # The exception's own text quotes the URL with its query: only its type is kept.
            message = f"{type(exc).__name__} on {method} {log_url}"
            return self._error(ErrorClass.TRANSIENT, message)
        except requests.RequestException as exc:  # invalid URL, schema, ...: a bug, not weather
            message = f"{type(exc).__name__} on {method} {log_url}"
            raise self._error(ErrorClass.INVALID_RESPONSE, message) from None
        logger.debug(
            "%s %s -> HTTP %s (attempt %d)", method, log_url, response.status_code, attempt
        )
        self._note_throttle(response)
        error = self._classify(response)
        if error is None:
            return response
        _scrub(error, secrets)
        if error.retry_after is None:
            error.retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if error.http_status is None:
            error.http_status = response.status_code
        return error

    def _error(self, error_class: ErrorClass, message: str) -> PlatformError:
        return PlatformError(error_class, redact(message), platform=self.platform)

    def _note_throttle(self, response: requests.Response) -> None:
        if self._throttle is None:
            return
        try:
            pause = float(self._throttle(response))
        except Exception:  # a throttle bug must not lose a good response
            logger.warning("throttle function failed; ignoring usage headers", exc_info=True)
            return
        if pause > 0:
            self._pending_pause = max(self._pending_pause, pause)

    def _pause_before_request(self) -> None:
        pause, self._pending_pause = self._pending_pause, 0.0
        if pause <= 0:
            return
        if pause > self.retry.max_wait_s:
            raise PlatformError(
                ErrorClass.TRANSIENT,
                f"usage limits ask for a {pause:.0f} s pause, longer than max_wait_s",
                platform=self.platform,
                retry_after=pause,
            )
        logger.debug("usage throttle: pausing %.1f s before the next request", pause)
        self._wait(pause)

    def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        pacer = self._sleep if isinstance(self._sleep, Pacer) else None
        if pacer is not None and not pacer.reserve(seconds):
            raise WaitBudgetSpent(
                ErrorClass.TRANSIENT,
                f"deferred: a {seconds:.0f} s rate-limit pause would exceed this run's wait "
                f"budget ({pacer.wait_budget_s:.0f} s in all, {pacer.waited_s:.0f} s already "
                "spent; ANALYTICS_MAX_RATE_LIMIT_WAIT_S); the next run picks it up",
                platform=self.platform,
            )
        self.waited_s += seconds
        self._sleep(seconds)


def _scrub(error: PlatformError, secrets: tuple[str, ...]) -> None:
    """Redact the token from an error `classify` built (defence in depth: it cannot know it)."""
    clean = redact(error.message, secrets)
    if clean != error.message:
        error.message = clean
        error.args = (clean,)
