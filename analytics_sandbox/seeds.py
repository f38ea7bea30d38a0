"""Deterministic randomness shared by the sandbox's synthetic worlds.

Every value is derived from SHA-256 of a seed and some parts joined with `|`, never from the
global `random` state, so two sandbox servers (or two test runs) answer byte for byte the same.
Changing anything here changes every platform's synthetic data: the end-to-end tests compare
against it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TypeVar

_T = TypeVar("_T")

SECONDS_PER_DAY = 86_400
HALF_LIFE_DAYS = 1.5  # lifetime metrics reach half their final value after this many days


def digest(seed: str, *parts: object) -> bytes:
    """SHA-256 of `seed|part|part...`."""
    text = "|".join([seed, *(str(part) for part in parts)])
    return hashlib.sha256(text.encode("utf-8")).digest()


def hash_int(seed: str, *parts: object) -> int:
    """A deterministic 64-bit integer from the seed and parts."""
    return int.from_bytes(digest(seed, *parts)[:8], "big")


def unit(seed: str, *parts: object) -> float:
    """A deterministic float in [0, 1)."""
    return hash_int(seed, *parts) / 2**64


def pick(weights: tuple[tuple[_T, int], ...], seed: str, *parts: object) -> _T:
    """A weighted choice among `weights` ((value, weight) pairs), keyed by the seed and parts."""
    ticket = hash_int(seed, *parts) % sum(weight for _, weight in weights)
    for value, weight in weights:
        if ticket < weight:
            return value
        ticket -= weight
    raise AssertionError("unreachable")  # pragma: no cover


def spread_seconds(count: int, seed: str, *parts: object) -> list[int]:
    """Distinct, sorted seconds-of-day for `count` items; item `i` hashes `parts + (i,)`."""
    chosen: set[int] = set()
    for index in range(count):
        second = hash_int(seed, *parts, index) % SECONDS_PER_DAY
        while second in chosen:
            second = (second + 1) % SECONDS_PER_DAY
        chosen.add(second)
    return sorted(chosen)


def day_count(low_high: tuple[int, int], seed: str, *parts: object) -> int:
    """How many items a day has: uniform in [low, high], keyed by the seed and parts."""
    low, high = low_high
    return low + hash_int(seed, *parts) % (high - low + 1)


def utc_midnight(day: dt.date) -> dt.datetime:
    """00:00 UTC of `day`."""
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def growth_fraction(age_days: int) -> float:
    """The share of a lifetime total reached `age_days` after publication (0 = the first day)."""
    return 1.0 - 0.5 ** ((age_days + 1) / HALF_LIFE_DAYS)
