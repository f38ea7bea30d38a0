"""Warning before a Meta (Facebook / Instagram) token stops working.

Meta reports a token's limits through `GET /debug_token` (`data.expires_at`, 0 = never;
`data.data_access_expires_at`, after which the token can no longer read data; `data.is_valid`).
A Page token made from a long-lived user token usually never expires by time, but its data
access does (90 days without the user coming back). `meta_expiry_warning` turns such a reply
into one operator line, or None when nothing is due within `warn_days`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any


def meta_expiry_warning(
    integration_id: str, debug_token: Mapping[str, Any], now: dt.datetime, warn_days: int
) -> str | None:
    """One line about the token of `integration_id` from a debug_token reply (its top-level
    object or its `data`), or None when it stays usable beyond `warn_days` days."""
    data = debug_token.get("data", debug_token)
    if not isinstance(data, Mapping):
        return None
    if data.get("is_valid") is False:
        return (
            f"The Meta token of integration {integration_id!r} is no longer valid: "
            "re-authorize it and store the new token."
        )
    limits = [
        (label, moment)
        for label, key in (
            ("expires", "expires_at"),
            ("loses data access", "data_access_expires_at"),
        )
        if (moment := _moment(data.get(key))) is not None
    ]
    if not limits:
        return None
    label, moment = min(limits, key=lambda limit: limit[1])
    left = moment - now
    if left > dt.timedelta(days=warn_days):
        return None
    when = moment.strftime("%Y-%m-%d %H:%M UTC")
    if left <= dt.timedelta(0):
        past = "expired" if label == "expires" else "lost data access"
        return (
            f"The Meta token of integration {integration_id!r} {past} on {when}: re-authorize it."
        )
    days = left.days
    span = f"in {days} day{'s' if days != 1 else ''}" if days else "within a day"
    return (
        f"The Meta token of integration {integration_id!r} {label} on {when} ({span}): "
        "re-authorize it before then."
    )


def _moment(value: Any) -> dt.datetime | None:
    """An epoch-seconds limit; 0 (never) and malformed values are None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return dt.datetime.fromtimestamp(value, dt.UTC)
