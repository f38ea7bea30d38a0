"""Warning before a Meta (Facebook / Instagram) token stops working.

Meta reports a token's limits through `debug_token` (read by the Graph clients'
`token_status()`, see `platforms.graph_token`): `expires_at` (never, for a Page token made from
a long-lived user token), `data_access_expires_at` (after which the token can no longer read
data: 90 days without the user coming back) and `is_valid`. `meta_expiry_warning` turns that
into one operator line, or None when nothing is due within `warn_days`
(ANALYTICS_TOKEN_EXPIRY_WARN_DAYS). The line names the integration, never the token.
"""

from __future__ import annotations

import datetime as dt

from analytics_pipeline.platforms.base import TokenStatus

META_PLATFORMS = frozenset({"facebook", "instagram"})


def meta_expiry_warning(
    integration_id: str, status: TokenStatus, now: dt.datetime, warn_days: int
) -> str | None:
    """One line about the token of `integration_id`, or None when it stays usable beyond
    `warn_days` days. The earliest of the two limits wins."""
    if not status.is_valid:
        return (
            f"The Meta token of integration {integration_id!r} is no longer valid: "
            "re-authorize it and store the new token."
        )
    limits = [
        (label, moment)
        for label, moment in (
            ("expires", status.expires_at),
            ("loses data access", status.data_access_expires_at),
        )
        if moment is not None
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
