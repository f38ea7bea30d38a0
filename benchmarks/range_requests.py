"""Requests that old days cost per platform: the harness's `ranges` scenario.

For each platform, one account's `days` old days (ending yesterday) are listed with one range
listing and their account metrics read with one range request, by a client with the platform's
default settings, against the sandbox in its own process. Reported per platform: the requests
(counted by the client and by the sandbox), and requests per integration-day against the
per-day design's 2 (one listing and one account request per day), issue 9's target being
<= 0.1. Counts only: no timing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from analytics_pipeline.platforms import create_client, settings_type
from analytics_pipeline.platforms.base import Account, Secret
from analytics_pipeline.records import PLATFORMS
from benchmarks.remote_sandbox import RemoteSandbox

TOKEN = "bench-sandbox-token"  # noqa: S105 (the sandbox accepts any token)
ACCOUNTS = {  # ids of the sandbox's synthetic accounts, one per platform
    "facebook": "1000001",
    "instagram": "17841400000000001",
    "linkedin": "urn:li:organization:2000001",
    "x": "3000001",
}
PER_DAY_DESIGN_REQUESTS = 2  # one listing + one account request per integration-day
TARGET_PER_DAY = 0.1


def platform_requests(sandbox: RemoteSandbox, platform: str, days: int) -> dict[str, Any]:
    settings = dataclasses.replace(settings_type(platform)(), base_url=sandbox.base_url)
    account = Account("bench", f"bench-{platform}", platform, ACCOUNTS[platform], Secret(TOKEN))
    client = create_client(account, settings)
    today = dt.datetime.now(dt.UTC).date()
    start, end = today - dt.timedelta(days=days), today - dt.timedelta(days=1)
    sandbox.clear_log()
    items = sum(1 for _ in client.list_content_between(start, end))
    client.fetch_account_metrics_between(start, end, snapshot_day=today)
    per_day = client.api_calls / days
    return {
        "items_listed": items,
        "requests": client.api_calls,
        "requests_seen_by_sandbox": sandbox.request_count(),
        "requests_per_integration_day": round(per_day, 3),
        "per_day_design_requests": PER_DAY_DESIGN_REQUESTS * days,
        "target_met": per_day <= TARGET_PER_DAY,
    }


def run(days: int, posts_per_day: int) -> dict[str, Any]:
    with RemoteSandbox(posts_per_day) as sandbox:
        sandbox.set_latency(0)
        by_platform = {p: platform_requests(sandbox, p, days) for p in PLATFORMS}
    return {
        "scenario": "ranges",
        "days": days,
        "posts_per_day": posts_per_day,
        "target_requests_per_integration_day": TARGET_PER_DAY,
        "platforms": by_platform,
    }
