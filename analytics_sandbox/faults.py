"""Fault switches of the sandbox, shared between the test thread and the server thread.

Every read and write goes through one lock; readers get copies (frozensets, dict copies), so a
switch can be flipped from Python (`server.faults.latency_ms = 50`, `server.faults.update(...)`)
or over HTTP (`POST /_sandbox/faults`) while requests are being served.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any


class TransientKind(StrEnum):
    """How a transient failure looks on the wire."""

    PAGE_LIMIT = "page_limit"  # HTTP 400, code 32, X-Page-Usage at 100 %
    BUC_LIMIT = "buc_limit"  # HTTP 400, code 80001, X-Business-Use-Case-Usage at 100 %
    SERVER_ERROR = "server_error"  # HTTP 500, code 2, is_transient true
    UNAVAILABLE = "unavailable"  # HTTP 503 with an HTML body (a proxy, not Graph, answering)


CYCLE = "cycle"
"""`transient_kind` value that rotates through `CYCLE_ORDER`, one kind per failure."""

CYCLE_ORDER: tuple[TransientKind, ...] = (
    TransientKind.PAGE_LIMIT,
    TransientKind.SERVER_ERROR,
    TransientKind.UNAVAILABLE,
)

DEFAULTS: dict[str, Any] = {
    "latency_ms": 0,
    "expired_token_pages": frozenset(),
    "transient_failures": {},
    "transient_kind": CYCLE,
    "deleted_posts": frozenset(),
    "invalid_metrics": frozenset(),
    # Metric names invalid for ONE kind of object only: {kind: [metric, ...]}. Kinds: an
    # Instagram media's "<media_type>/<media_product_type>" ("VIDEO/FEED", "IMAGE/STORY", ...),
    # Facebook "post" (a post's insights), "reel" (video_insights), "page" (page insights).
    "invalid_metrics_for": {},
    "null_batch_items": 0,
    "rate_limit_usage_pct": None,
    # Accounts whose credential lacks a permission/scope/admin role (Graph 10/200, LinkedIn 403,
    # X 403).
    "permission_denied_accounts": frozenset(),
    # Accounts whose long-window quota is used up (LinkedIn daily 429, X usage-cap 429).
    "quota_exhausted_accounts": frozenset(),
    # API versions the sandbox answers as sunset/expired (LinkedIn 426, Graph version expired).
    "sunset_api_versions": frozenset(),
    # Accounts whose token has no user context (X: non_public/organic metrics refused).
    "app_only_accounts": frozenset(),
    # Which spelling of X API v2 the sandbox speaks: "tweet" (X's docs, OpenAPI 2.159:
    # tweet.fields, retweet_count, api.twitter.com problem types) or "post" (OpenAPI 2.167:
    # post.fields, repost_count, api.x.com problem types). The other spelling's parameters get
    # X's 400 invalid-request problem.
    "x_spelling": "tweet",
    # What Meta's debug_token reports for a token, keyed by `token_fingerprint(token)` or "*"
    # (every other token): {"expires_in_s": n (absent: never, expires_at 0),
    # "data_access_expires_in_s": n (absent: 90 days), "is_valid": bool (absent: true)},
    # seconds from the sandbox clock. The fingerprint keeps token values out of the switches.
    "meta_token_limits": {},
}
_TOKEN_LIMIT_KEYS = {"expires_in_s": int, "data_access_expires_in_s": int, "is_valid": bool}
X_SPELLINGS = frozenset({"tweet", "post"})

_SET_SWITCHES = frozenset(
    {
        "expired_token_pages",
        "deleted_posts",
        "invalid_metrics",
        "permission_denied_accounts",
        "quota_exhausted_accounts",
        "sunset_api_versions",
        "app_only_accounts",
    }
)


_METRIC_KIND = re.compile(r"[A-Z_]+/[A-Z_]+|post|reel|page")


class FaultState:
    """Thread-safe fault switches. Unknown names or wrong types raise ValueError."""

    def __init__(self, **settings: Any) -> None:
        self._lock = threading.RLock()
        self._values: dict[str, Any] = dict(DEFAULTS)
        self._cycle_position = 0
        self.update(**settings)

    def __repr__(self) -> str:
        return f"FaultState({self.snapshot()!r})"

    # --- bulk access -----------------------------------------------------------------------

    def update(self, **changes: Any) -> None:
        """Replace the given switches atomically (all are validated before any is applied)."""
        normalized = {name: _normalize(name, value) for name, value in changes.items()}
        with self._lock:
            self._values.update(normalized)

    def snapshot(self) -> dict[str, Any]:
        """The switches as JSON-compatible values (sets become sorted lists)."""
        with self._lock:
            values = dict(self._values)
        out: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, frozenset):
                out[name] = sorted(value)
            elif isinstance(value, dict):
                out[name] = {
                    key: sorted(item) if isinstance(item, frozenset) else item
                    for key, item in sorted(value.items())
                }
            else:
                out[name] = value
        return out

    def reset(self) -> None:
        """Back to the defaults (not to the values the state was created with)."""
        with self._lock:
            self._values = dict(DEFAULTS)
            self._cycle_position = 0

    # --- convenience -----------------------------------------------------------------------

    def expire_token(self, page_id: str) -> None:
        with self._lock:
            self._values["expired_token_pages"] = self._values["expired_token_pages"] | {page_id}

    def fail_next(self, page_id: str, count: int = 1) -> None:
        """The next `count` calls touching `page_id` fail transiently."""
        with self._lock:
            failures = dict(self._values["transient_failures"])
            failures[page_id] = failures.get(page_id, 0) + _non_negative_int("count", count)
            self._values["transient_failures"] = failures

    def set_token_limits(self, token: str, **limits: Any) -> None:
        """What debug_token reports for `token` (or "*": every token), see `meta_token_limits`."""
        key = "*" if token == "*" else token_fingerprint(token)  # noqa: S105
        with self._lock:
            current = dict(self._values["meta_token_limits"])
            current[key] = limits
            self._values["meta_token_limits"] = _token_limits(current)

    def token_limits(self, token: str) -> dict[str, Any]:
        """The limits debug_token reports for `token` (its own entry, else "*", else none)."""
        with self._lock:
            limits = self._values["meta_token_limits"]
            return dict(limits.get(token_fingerprint(token), limits.get("*", {})))

    def delete_post(self, post_id: str) -> None:
        with self._lock:
            self._values["deleted_posts"] = self._values["deleted_posts"] | {post_id}

    # --- used by the server ----------------------------------------------------------------

    def take_transient(self, page_ids: Iterable[str]) -> TransientKind | None:
        """Consume one pending failure of every touched page; the kind of failure, if any."""
        with self._lock:
            failures = dict(self._values["transient_failures"])
            hit = False
            for page_id in set(page_ids):
                if failures.get(page_id, 0) > 0:
                    hit = True
                    failures[page_id] -= 1
                    if failures[page_id] == 0:
                        del failures[page_id]
            if not hit:
                return None
            self._values["transient_failures"] = failures
            kind = self._values["transient_kind"]
            if kind != CYCLE:
                return TransientKind(kind)
            chosen = CYCLE_ORDER[self._cycle_position % len(CYCLE_ORDER)]
            self._cycle_position += 1
            return chosen

    def take_null_item(self) -> bool:
        """True when the next batch item must come back `null` (consumes one)."""
        with self._lock:
            pending = self._values["null_batch_items"]
            if pending <= 0:
                return False
            self._values["null_batch_items"] = pending - 1
            return True

    def invalid_for(self, kind: str) -> frozenset[str]:
        """The metric names invalid for an object of `kind` (see `invalid_metrics_for`): the
        ones invalid everywhere plus the ones invalid for that kind only."""
        with self._lock:
            scoped = self._values["invalid_metrics_for"].get(kind, frozenset())
            return frozenset(self._values["invalid_metrics"] | scoped)

    def any_expired(self, page_ids: Iterable[str]) -> bool:
        return self.any_in("expired_token_pages", page_ids)

    def any_in(self, switch: str, account_ids: Iterable[str]) -> bool:
        """True when one of the accounts is listed in the set-valued `switch`."""
        if switch not in _SET_SWITCHES:
            raise ValueError(f"{switch!r} is not a set-valued fault switch")
        with self._lock:
            listed = self._values[switch]
        return any(account_id in listed for account_id in account_ids)

    # --- single switches -------------------------------------------------------------------

    def _get(self, name: str) -> Any:
        with self._lock:
            value = self._values[name]
        return dict(value) if isinstance(value, dict) else value

    @property
    def latency_ms(self) -> int:
        return int(self._get("latency_ms"))

    @latency_ms.setter
    def latency_ms(self, value: int) -> None:
        self.update(latency_ms=value)

    @property
    def expired_token_pages(self) -> frozenset[str]:
        return frozenset(self._get("expired_token_pages"))

    @expired_token_pages.setter
    def expired_token_pages(self, value: Iterable[str]) -> None:
        self.update(expired_token_pages=value)

    @property
    def transient_failures(self) -> dict[str, int]:
        return dict(self._get("transient_failures"))

    @transient_failures.setter
    def transient_failures(self, value: Mapping[str, int]) -> None:
        self.update(transient_failures=value)

    @property
    def transient_kind(self) -> str:
        return str(self._get("transient_kind"))

    @transient_kind.setter
    def transient_kind(self, value: str) -> None:
        self.update(transient_kind=value)

    @property
    def deleted_posts(self) -> frozenset[str]:
        return frozenset(self._get("deleted_posts"))

    @deleted_posts.setter
    def deleted_posts(self, value: Iterable[str]) -> None:
        self.update(deleted_posts=value)

    @property
    def invalid_metrics(self) -> frozenset[str]:
        return frozenset(self._get("invalid_metrics"))

    @invalid_metrics.setter
    def invalid_metrics(self, value: Iterable[str]) -> None:
        self.update(invalid_metrics=value)

    @property
    def invalid_metrics_for(self) -> dict[str, frozenset[str]]:
        return dict(self._get("invalid_metrics_for"))

    @invalid_metrics_for.setter
    def invalid_metrics_for(self, value: Mapping[str, Iterable[str]]) -> None:
        self.update(invalid_metrics_for=value)

    @property
    def null_batch_items(self) -> int:
        return int(self._get("null_batch_items"))

    @null_batch_items.setter
    def null_batch_items(self, value: int) -> None:
        self.update(null_batch_items=value)

    @property
    def x_spelling(self) -> str:
        return str(self._get("x_spelling"))

    @x_spelling.setter
    def x_spelling(self, value: str) -> None:
        self.update(x_spelling=value)

    @property
    def rate_limit_usage_pct(self) -> int | None:
        value = self._get("rate_limit_usage_pct")
        return None if value is None else int(value)

    @rate_limit_usage_pct.setter
    def rate_limit_usage_pct(self, value: int | None) -> None:
        self.update(rate_limit_usage_pct=value)


# --- validation --------------------------------------------------------------------------------


def _normalize(name: str, value: Any) -> Any:
    if name not in DEFAULTS:
        raise ValueError(f"unknown fault switch {name!r}; known: {', '.join(sorted(DEFAULTS))}")
    if name in ("latency_ms", "null_batch_items"):
        return _non_negative_int(name, value)
    if name in _SET_SWITCHES:
        return _string_set(name, value)
    if name == "transient_failures":
        return _failure_counts(value)
    if name == "invalid_metrics_for":
        return _metrics_by_kind(value)
    if name == "meta_token_limits":
        return _token_limits(value)
    if name == "transient_kind":
        allowed = {CYCLE, *(kind.value for kind in TransientKind)}
        if value not in allowed:
            raise ValueError(f"transient_kind must be one of {sorted(allowed)}")
        return str(value)
    if name == "x_spelling":
        if value not in X_SPELLINGS:
            raise ValueError(f"x_spelling must be one of {sorted(X_SPELLINGS)}")
        return str(value)
    if value is None:
        return None
    pct = _non_negative_int(name, value)
    if pct > 1000:
        raise ValueError("rate_limit_usage_pct must be at most 1000")
    return pct


def _non_negative_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer")
    return value


def _string_set(name: str, value: Any) -> frozenset[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list of strings")
    items = list(value)
    if not all(isinstance(item, str) and item for item in items):
        raise ValueError(f"{name} must be a list of non-empty strings")
    return frozenset(items)


def _metrics_by_kind(value: Any) -> dict[str, frozenset[str]]:
    if not isinstance(value, Mapping):
        raise ValueError("invalid_metrics_for must map object kinds to metric names")
    out: dict[str, frozenset[str]] = {}
    for kind, names in value.items():
        if not isinstance(kind, str) or not _METRIC_KIND.fullmatch(kind):
            raise ValueError(
                f"invalid_metrics_for key {kind!r} is not an object kind: "
                '"<MEDIA_TYPE>/<MEDIA_PRODUCT_TYPE>" (e.g. "VIDEO/FEED"), "post", "reel" or "page"'
            )
        metrics = _string_set("invalid_metrics_for values", names)
        if metrics:
            out[kind] = metrics
    return out


def _failure_counts(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise ValueError("transient_failures must map page ids to counts")
    counts: dict[str, int] = {}
    for page_id, count in value.items():
        if not isinstance(page_id, str) or not page_id:
            raise ValueError("transient_failures keys must be page ids")
        if _non_negative_int("transient_failures count", count):
            counts[page_id] = count
    return counts


def token_fingerprint(token: str) -> str:
    """The key of a token in `meta_token_limits`: 16 hex digits of its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _token_limits(value: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise ValueError("meta_token_limits must map token fingerprints (or '*') to limits")
    out: dict[str, dict[str, Any]] = {}
    for key, limits in value.items():
        if not isinstance(key, str) or not key or not isinstance(limits, Mapping):
            raise ValueError("meta_token_limits must map token fingerprints (or '*') to limits")
        for name, item in limits.items():
            kind = _TOKEN_LIMIT_KEYS.get(name)
            if kind is None or isinstance(item, bool) is not (kind is bool):
                raise ValueError(
                    f"meta_token_limits: {name!r} must be one of {sorted(_TOKEN_LIMIT_KEYS)} "
                    "(seconds as integers, is_valid a boolean)"
                )
            if not isinstance(item, kind):
                raise ValueError(f"meta_token_limits: {name!r} must be a {kind.__name__}")
        out[key] = dict(limits)
    return out
