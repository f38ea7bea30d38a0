"""A small warehouse for the KPI tests: four platforms, two organizations, two days (DAY and the
day before), with the cases the KPI rules are about (a publication day, a gap day, a decreased
counter, unreported inputs, a zero denominator, a missing followers snapshot)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from analytics_pipeline.records import (
    AccountMetrics,
    ContentFormat,
    ContentItem,
    ContentMetrics,
    ValueKind,
)
from analytics_pipeline.warehouse import (
    add_integration,
    upsert_account_metrics,
    upsert_content_items,
    upsert_content_metrics,
)

DAY = dt.date(2026, 3, 2)
BEFORE = DAY - dt.timedelta(days=1)
LIFETIME, DAILY = ValueKind.LIFETIME_SNAPSHOT, ValueKind.DAILY
OBSERVED = dt.datetime(2026, 3, 3, 1, 30, tzinfo=dt.UTC)

# integration id -> (organization, platform)
INTEGRATIONS: dict[str, tuple[str, str]] = {
    "fb-1": ("org-a", "facebook"),
    "ig-1": ("org-a", "instagram"),
    "li-1": ("org-b", "linkedin"),
    "x-1": ("org-b", "x"),
    "fb-idle": ("org-b", "facebook"),
}


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


ITEMS: dict[str, list[ContentItem]] = {
    "fb-1": [
        ContentItem("p1", ContentFormat.POST, at(BEFORE, 10)),
        ContentItem("p2", ContentFormat.REEL, at(DAY, 9)),
    ],
    "ig-1": [
        ContentItem("m1", ContentFormat.POST, at(BEFORE - dt.timedelta(days=1), 8)),
        ContentItem("m2", ContentFormat.CAROUSEL, at(BEFORE, 8)),
        ContentItem("m3", ContentFormat.REEL, at(DAY, 23)),
    ],
    "li-1": [
        ContentItem("u1", ContentFormat.TEXT, at(DAY - dt.timedelta(days=5), 12)),
        ContentItem("u2", ContentFormat.LINK, at(DAY, 7)),
    ],
    "x-1": [ContentItem("t1", ContentFormat.TEXT, at(BEFORE, 18))],
}

METRICS: dict[tuple[str, dt.date], list[ContentMetrics]] = {
    ("fb-1", BEFORE): [
        ContentMetrics("p1", LIFETIME, reactions=10, comments=2, clicks=5, reach=100, views=150)
    ],
    ("fb-1", DAY): [
        ContentMetrics("p1", LIFETIME, reactions=15, comments=3, clicks=9, reach=160, views=240),
        ContentMetrics(
            "p2", LIFETIME, reactions=4, comments=0, shares=1, clicks=2, reach=50, views=70
        ),
    ],
    ("ig-1", BEFORE): [
        ContentMetrics("m1", LIFETIME, likes=100, comments=10, shares=5, saves=7, reach=1000)
    ],
    ("ig-1", DAY): [
        # likes went down: a decreased counter
        ContentMetrics("m1", LIFETIME, likes=90, comments=12, shares=5, saves=8, reach=1100),
        # no snapshot the day before and not published today: NULL per-day values
        ContentMetrics("m2", LIFETIME, likes=40, comments=4, shares=1, saves=2, reach=300),
        ContentMetrics("m3", LIFETIME),  # insights not ready: every column NULL
    ],
    ("li-1", DAY): [
        ContentMetrics(
            "u1", DAILY, likes=3, comments=1, shares=0, clicks=6, impressions=400, reach=300
        ),
        ContentMetrics(
            "u2", DAILY, likes=0, comments=0, shares=0, clicks=0, impressions=0, reach=0
        ),
    ],
    ("x-1", BEFORE): [
        ContentMetrics("t1", LIFETIME, likes=5, comments=1, shares=2, saves=0, impressions=500)
    ],
    ("x-1", DAY): [
        ContentMetrics("t1", LIFETIME, likes=8, comments=1, shares=3, saves=1, impressions=900)
    ],
}

ACCOUNTS: dict[tuple[str, dt.date], AccountMetrics] = {
    ("fb-1", BEFORE): AccountMetrics(followers_total=1000),
    ("fb-1", DAY): AccountMetrics(followers_total=1010, reach=5000),
    ("ig-1", DAY): AccountMetrics(followers_total=2000, new_followers=12, reach=0),
    ("li-1", BEFORE): AccountMetrics(followers_total=500),
    ("li-1", DAY): AccountMetrics(new_followers=4, impressions=1200),
    ("x-1", BEFORE): AccountMetrics(followers_total=300),
}


def seed(engine: sa.Engine) -> None:
    """Write the integrations, items, metrics and account metrics above."""
    with engine.begin() as conn:
        for number, (integration_id, (organization_id, platform)) in enumerate(
            INTEGRATIONS.items(), start=1
        ):
            add_integration(
                conn,
                organization_id=organization_id,
                integration_id=integration_id,
                platform=platform,
                external_account_id=_account_id(platform, number),
                display_name=integration_id,
                credential_env="KPI_TEST_TOKEN",
                now=OBSERVED,
            )
        for integration_id, items in ITEMS.items():
            organization_id, platform = INTEGRATIONS[integration_id]
            upsert_content_items(
                conn, **_ids(integration_id), platform=platform, items=items, now=OBSERVED
            )
        for (integration_id, day), metrics in METRICS.items():
            upsert_content_metrics(
                conn,
                **_ids(integration_id),
                metric_date=day,
                metrics=metrics,
                observed_at=OBSERVED,
            )
        for (integration_id, day), account in ACCOUNTS.items():
            upsert_account_metrics(
                conn,
                **_ids(integration_id),
                metric_date=day,
                metrics=account,
                observed_at=OBSERVED,
            )


def _ids(integration_id: str) -> dict[str, Any]:
    return {"organization_id": INTEGRATIONS[integration_id][0], "integration_id": integration_id}


def _account_id(platform: str, number: int) -> str:
    """A valid account id of the platform (records.check_account_id), unique per integration."""
    return f"urn:li:organization:{number}" if platform == "linkedin" else str(1_000_000 + number)
