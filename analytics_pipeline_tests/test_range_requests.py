"""Range requests for old days, per platform, against the sandbox over real HTTP (127.0.0.1):
`list_content_between` and `fetch_account_metrics_between` give exactly what the per-day calls
give, in far fewer requests, split into chunks where the platform caps a range, and the
sandbox refuses an over-long range the way the platform does.

Request counts for a 90-day range (listing pages + account requests) are asserted against
numbers derived from the synthetic world, and against the per-day calls (90 listings + 90
account calls before range requests existed).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from analytics_pipeline.platforms.base import Account, PlatformClient, Secret
from analytics_pipeline.platforms.facebook import FacebookClient, FacebookSettings
from analytics_pipeline.platforms.http import RetryConfig
from analytics_pipeline.platforms.instagram import InstagramClient, InstagramSettings
from analytics_pipeline.platforms.linkedin import (
    LinkedInClient,
    LinkedInSettings,
    earliest_statistics_day,
)
from analytics_pipeline.platforms.x import XClient, XSettings
from analytics_pipeline.records import AccountMetrics, ContentItem
from analytics_sandbox import FixedClock, SandboxConfig, SandboxServer, data, x_data
from analytics_sandbox import instagram_data as igd
from analytics_sandbox import linkedin_data as li
from analytics_sandbox.x_data import TweetKind

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
CONFIG = SandboxConfig(posts_per_day=(2, 6))
TOKEN = "sandbox-range-token-0123456789"
FAST = RetryConfig(backoff_base_s=0.001, backoff_max_s=0.002)

PAGE = "1000001"
IG = "17841400000000001"
ORG = "urn:li:organization:2000001"
X_USER = "3000001"

# The 90 days before today: what a backfill of old days asks for.
START, END = TODAY - dt.timedelta(days=90), TODAY - dt.timedelta(days=1)
DAYS = [START + dt.timedelta(days=offset) for offset in range(90)]


def account(platform: str, external_id: str) -> Account:
    return Account("org-1", f"int-{platform}", platform, external_id, Secret(TOKEN))


def facebook(sandbox: SandboxServer) -> FacebookClient:
    settings = FacebookSettings(base_url=sandbox.base_url, retry=FAST)
    return FacebookClient(settings, account("facebook", PAGE), sleep=lambda _s: None)


def instagram(sandbox: SandboxServer, clock: FixedClock) -> InstagramClient:
    settings = InstagramSettings(base_url=sandbox.base_url, retry=FAST)
    return InstagramClient(settings, account("instagram", IG), sleep=lambda _s: None, clock=clock)


def linkedin(sandbox: SandboxServer, clock: FixedClock) -> LinkedInClient:
    settings = LinkedInSettings(base_url=sandbox.base_url, retry=FAST)
    return LinkedInClient(settings, account("linkedin", ORG), sleep=lambda _s: None, clock=clock)


def x_client(sandbox: SandboxServer, clock: FixedClock, **overrides: Any) -> XClient:
    settings = XSettings(base_url=sandbox.base_url, retry=FAST, **overrides)
    return XClient(settings, account("x", X_USER), sleep=lambda _s: None, clock=clock)


def by_id(items: Iterator[ContentItem] | list[ContentItem]) -> dict[str, ContentItem]:
    """Items by id; a duplicate would be a bug of the listing."""
    found: dict[str, ContentItem] = {}
    for item in items:
        assert item.external_content_id not in found, f"listed twice: {item}"
        found[item.external_content_id] = item
    return found


def assert_union_of_days(
    make: Callable[[], PlatformClient], start: dt.date, end: dt.date
) -> tuple[int, int, dict[str, ContentItem]]:
    """The range listing of `start`..`end` is exactly the union of the per-day listings (each
    with a fresh client): (range requests, per-day requests, the items)."""
    ranged = make()
    listed = by_id(ranged.list_content_between(start, end))
    union: dict[str, ContentItem] = {}
    day_calls = 0
    day = start
    while day <= end:
        per_day = make()
        found = by_id(per_day.list_content(day))
        assert not set(found) & set(union)
        union.update(found)
        day_calls += per_day.api_calls
        day += dt.timedelta(days=1)
    assert listed == union and listed
    return ranged.api_calls, day_calls, listed


def assert_account_days_match(
    make: Callable[[], PlatformClient], start: dt.date, end: dt.date, snapshot_day: dt.date
) -> tuple[int, int, dict[dt.date, AccountMetrics]]:
    """`fetch_account_metrics_between` equals one `fetch_account_metrics` per day (snapshot on
    `snapshot_day` only): (range requests, per-day requests, the metrics)."""
    ranged = make()
    found = ranged.fetch_account_metrics_between(start, end, snapshot_day=snapshot_day)
    per_day = make()
    expected = {}
    day = start
    while day <= end:
        expected[day] = per_day.fetch_account_metrics(day, include_snapshot=day == snapshot_day)
        day += dt.timedelta(days=1)
    assert found == expected
    assert [day for day, metrics in found.items() if metrics.followers_total is not None] == [
        snapshot_day
    ]
    return ranged.api_calls, per_day.api_calls, found


def batch_urls(sent: list[requests.PreparedRequest]) -> list[str]:
    """The relative URLs of every Graph batch item sent."""
    urls = []
    for request in sent:
        if request.method == "POST":
            items = json.loads(parse_qs(str(request.body))["batch"][0])
            urls.extend(item["relative_url"] for item in items)
    return urls


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def graph_get(
    http: requests.Session, sandbox: SandboxServer, path: str, **params: Any
) -> requests.Response:
    return http.get(f"{sandbox.base_url}/v25.0/{path}", params=params, timeout=5)


def unix(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp())


# --------------------------------------------------------------------------- all platforms

OLD_DAY_REQUEST_BUDGET = 0.1  # listing + account requests per old integration-day (issue 9)


@pytest.mark.parametrize("platform", ["facebook", "instagram", "linkedin", "x"])
def test_old_days_cost_at_most_a_tenth_of_a_request_per_day(
    platform: str, sandbox: SandboxServer, clock: FixedClock
) -> None:
    """90 old days of one account: the range listing and the account range request together
    stay within the budget, with each client's default settings."""
    make: dict[str, Callable[[], PlatformClient]] = {
        "facebook": lambda: facebook(sandbox),
        "instagram": lambda: instagram(sandbox, clock),
        "linkedin": lambda: linkedin(sandbox, clock),
        "x": lambda: x_client(sandbox, clock),
    }
    client = make[platform]()
    listed = list(client.list_content_between(START, END))
    client.fetch_account_metrics_between(START, END, snapshot_day=TODAY)
    assert listed
    assert client.api_calls <= OLD_DAY_REQUEST_BUDGET * len(DAYS), client.api_calls


# --------------------------------------------------------------------------- Facebook


def test_facebook_range_listing_is_the_union_of_the_days_in_a_few_pages(
    sandbox: SandboxServer,
) -> None:
    range_calls, day_calls, listed = assert_union_of_days(lambda: facebook(sandbox), START, END)
    posts = [p for day in DAYS for p in data.posts_for_day(PAGE, day, CONFIG)]
    assert sorted(listed) == sorted(p.id for p in posts)
    # One walk of /posts (100 a page) instead of one per day.
    assert range_calls == math.ceil(len(posts) / 100) == 4
    assert day_calls == 90


def test_facebook_range_account_metrics_equal_the_days_in_one_batch_call(
    sandbox: SandboxServer,
) -> None:
    # The 90 days cross the end of daylight saving time (2026-11-01): Pacific days of 25 h.
    range_calls, day_calls, found = assert_account_days_match(
        lambda: facebook(sandbox), START, END, END
    )
    world = data.page_day(PAGE, dt.date(2026, 11, 1), CONFIG)
    assert found[dt.date(2026, 11, 1)].views == world.media_view
    assert found[END].followers_total == data.page_followers(PAGE, TODAY, CONFIG)
    # Snapshot + two insights items (89 + 1 days) in one batch, against 90 batch calls.
    assert (range_calls, day_calls) == (1, 90)


def test_facebook_a_long_range_is_split_into_90_day_requests(
    sandbox: SandboxServer, sent: list[requests.PreparedRequest]
) -> None:
    start, end = TODAY - dt.timedelta(days=200), TODAY - dt.timedelta(days=1)
    client = facebook(sandbox)
    found = client.fetch_account_metrics_between(start, end, snapshot_day=None)
    assert client.api_calls == 1  # every chunk rides in the same batch
    insights = [query_of(url) for url in batch_urls(sent) if "/insights?" in url]
    assert len(insights) == math.ceil(200 / 89) == 3
    covered: list[dt.date] = []
    for query in insights:
        since, until = int(query["since"]), int(query["until"])
        assert until - since <= 90 * 86_400  # Graph's documented maximum
        first = dt.datetime.fromtimestamp(since, dt.UTC).date()
        last = dt.datetime.fromtimestamp(until, dt.UTC).date() - dt.timedelta(days=2)
        covered.extend(first + dt.timedelta(days=i) for i in range((last - first).days + 1))
    assert covered == sorted(found) and len(found) == 201 - 1
    for day, metrics in found.items():
        world = data.page_day(PAGE, day, CONFIG)
        assert (metrics.views, metrics.reach, metrics.new_followers, metrics.profile_views) == (
            world.media_view,
            world.media_view_unique,
            world.daily_follows_unique,
            world.views_total,
        )
        assert metrics.followers_total is None


def test_facebook_sandbox_refuses_more_than_90_days_of_page_insights(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    path = f"{PAGE}/insights"
    common = {"metric": "page_media_view", "period": "day"}
    ok = graph_get(
        http, sandbox, path, **common, since=unix(START), until=unix(START) + 90 * 86_400
    )
    assert ok.status_code == 200 and len(ok.json()["data"][0]["values"]) == 90
    for since, until in (
        (unix(START), unix(START) + 91 * 86_400),  # one day too many
        (unix(END), unix(START)),  # until before since
    ):
        refused = graph_get(http, sandbox, path, **common, since=since, until=until)
        error = refused.json()["error"]
        assert refused.status_code == 400 and error["code"] == 100
        assert error["type"] == "OAuthException" and error["fbtrace_id"]
    assert error["message"] == "(#100) Param until must be after since"
    too_long = graph_get(
        http, sandbox, path, **common, since=unix(START), until=unix(START) + 91 * 86_400
    )
    assert too_long.json()["error"]["message"] == (
        "(#100) There cannot be more than 90 days (7776000 s) between since and until"
    )


def test_a_range_ending_before_it_starts_is_a_value_error(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    clients: list[PlatformClient] = [
        facebook(sandbox),
        instagram(sandbox, clock),
        linkedin(sandbox, clock),
        x_client(sandbox, clock),
    ]
    for client in clients:
        with pytest.raises(ValueError, match="must not end before it starts"):
            list(client.list_content_between(END, START))
        with pytest.raises(ValueError, match="must not end before it starts"):
            client.fetch_account_metrics_between(END, START, snapshot_day=None)
        assert client.api_calls == 0


# --------------------------------------------------------------------------- Instagram


@functools.cache
def instagram_media() -> list[igd.IgMedia]:
    return list(igd.media_desc(IG, now=NOW, config=CONFIG))


def instagram_walk_pages(start: dt.date, page_size: int = InstagramSettings.page_size) -> int:
    """Pages of /media newest first down to the first page that ends before `start`."""
    media = instagram_media()
    floor = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    for number, offset in enumerate(range(0, len(media), page_size), start=1):
        if media[offset : offset + page_size][-1].timestamp < floor:
            return number
    return max(1, math.ceil(len(media) / page_size))


def test_instagram_range_listing_is_the_union_of_the_days_with_live_stories(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    start = TODAY - dt.timedelta(days=89)  # up to today: its live stories are listed too
    range_calls, day_calls, listed = assert_union_of_days(
        lambda: instagram(sandbox, clock), start, TODAY
    )
    days = [start + dt.timedelta(days=i) for i in range(90)]
    media = [m for d in days for m in igd.media_for_day(IG, d, CONFIG) if m.timestamp <= NOW]
    stories = [
        s
        for d in (TODAY - dt.timedelta(days=1), TODAY)
        for s in igd.stories_for_day(IG, d, CONFIG)
        if s.is_live_story(NOW)
    ]
    assert stories, "no live story: move NOW"
    assert sorted(listed) == sorted(m.id for m in media + stories)
    # One walk of /media down to the range plus one /stories read; every day walked /media
    # from the newest item down to its own day.
    assert range_calls == instagram_walk_pages(start) + 1 == 5
    assert day_calls == sum(instagram_walk_pages(day) + 1 for day in days) == 302


def test_instagram_range_account_metrics_equal_the_days_in_two_batch_calls(
    sandbox: SandboxServer, clock: FixedClock, sent: list[requests.PreparedRequest]
) -> None:
    range_calls, day_calls, found = assert_account_days_match(
        lambda: instagram(sandbox, clock), START, END, END
    )
    for day in (START, dt.date(2026, 11, 1), END):  # DST ends on 2026-11-01
        world = igd.account_day(IG, day, CONFIG)
        assert (found[day].reach, found[day].views) == (world.reach, world.views)
    assert found[END].new_followers == igd.account_day(IG, END, CONFIG).follower_count
    assert found[START].new_followers is None  # older than follower_count's 30 days
    # 1 snapshot + 4 time-series items (29-day chunks) + 90 daily totals = 95 items: 2 calls.
    assert (range_calls, day_calls) == (2, 90)
    ranged_items = batch_urls(sent)[:95]
    assert ranged_items[0].endswith("?fields=followers_count")
    assert sum("metric_type=total_value" in url for url in ranged_items) == 90


def test_instagram_time_series_are_split_into_30_day_requests(
    sandbox: SandboxServer,
    clock: FixedClock,
    http: requests.Session,
    sent: list[requests.PreparedRequest],
) -> None:
    start = TODAY - dt.timedelta(days=120)
    found = instagram(sandbox, clock).fetch_account_metrics_between(start, END, snapshot_day=None)
    series = [query_of(url) for url in batch_urls(sent) if "metric_type" not in url]
    assert len(series) == 5  # 91 days of reach only (4 chunks), 29 days with follower_count
    for query in series:
        since, until = int(query["since"]), int(query["until"])
        assert until - since <= 30 * 86_400  # Graph's maximum for user insights
        if "follower_count" in query["metric"]:
            assert since >= unix(TODAY - dt.timedelta(days=30))
    for day, metrics in found.items():
        world = igd.account_day(IG, day, CONFIG)
        assert (metrics.reach, metrics.profile_views) == (world.reach, world.profile_views)
    # What the chunks avoid: Graph's answer to 31 days at once.
    refused = graph_get(
        http,
        sandbox,
        f"{IG}/insights",
        metric="reach",
        period="day",
        since=unix(start),
        until=unix(start) + 31 * 86_400,
    )
    error = refused.json()["error"]
    assert refused.status_code == 400 and error["code"] == 100
    assert error["message"] == (
        "(#100) There cannot be more than 30 days (2592000 s) between since and until"
    )


# --------------------------------------------------------------------------- LinkedIn


@functools.cache
def linkedin_posts() -> list[li.LiPost]:
    return list(li.iter_posts_created_desc(ORG, NOW, CONFIG))


def linkedin_walk_pages(
    start: dt.date, page_size: int = LinkedInSettings.page_size, slack_days: int = 1
) -> int:
    """Pages of the created-desc posts finder down to posts created `slack_days` before."""
    posts = linkedin_posts()
    floor = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC) - dt.timedelta(days=slack_days)
    for number, offset in enumerate(range(0, len(posts), page_size), start=1):
        page = posts[offset : offset + page_size]
        if any(p.created_at < floor for p in page) or len(page) < page_size:
            return number
    return math.ceil(len(posts) / page_size)


def test_linkedin_range_listing_is_the_union_of_the_days_in_one_walk(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    range_calls, day_calls, listed = assert_union_of_days(
        lambda: linkedin(sandbox, clock), START, END
    )
    posts = [p for day in DAYS for p in li.posts_for_day(ORG, day, CONFIG)]
    assert sorted(listed) == sorted(p.urn for p in posts)
    assert range_calls == linkedin_walk_pages(START) == 4
    assert day_calls == sum(linkedin_walk_pages(day) for day in DAYS) == 217


def test_linkedin_range_account_metrics_equal_the_days_in_one_request_per_finder(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    range_calls, day_calls, found = assert_account_days_match(
        lambda: linkedin(sandbox, clock), START, END, END
    )
    gain = li.follower_gain(ORG, START, CONFIG)
    assert found[START].new_followers == gain.organic + gain.paid
    assert found[END].profile_views == li.page_views(ORG, END, CONFIG)
    assert found[END].followers_total == li.follower_total(ORG, TODAY, CONFIG)
    # networkSizes + follower, page and share statistics once each, against 3 a day + 1.
    assert (range_calls, day_calls) == (4, 271)
    paths = [r.path for r in sandbox.requests(ORG)[:4]]
    assert paths == [
        f"/rest/networkSizes/{ORG}",
        "/rest/organizationalEntityFollowerStatistics",
        "/rest/organizationPageStatistics",
        "/rest/organizationalEntityShareStatistics",
    ]


def test_linkedin_a_range_reaching_past_12_months_asks_only_the_window(
    sandbox: SandboxServer, clock: FixedClock, http: requests.Session
) -> None:
    earliest = earliest_statistics_day(TODAY)
    start, end = earliest - dt.timedelta(days=10), earliest + dt.timedelta(days=4)
    client = linkedin(sandbox, clock)
    found = client.fetch_account_metrics_between(start, end, snapshot_day=None)
    assert client.api_calls == 3  # one interval per finder, from `earliest` on
    per_day = linkedin(sandbox, clock)
    for day, metrics in found.items():
        if day < earliest:
            assert metrics == AccountMetrics()  # outside LinkedIn's window: NULL, not asked
        else:
            assert metrics == per_day.fetch_account_metrics(day, include_snapshot=False)
            assert metrics.new_followers is not None
    # A whole year (the window) is still one request per finder.
    year = linkedin(sandbox, clock)
    whole = year.fetch_account_metrics_between(earliest, TODAY, snapshot_day=None)
    assert year.api_calls == 3 and all(m.profile_views is not None for m in whole.values())
    # What the clamp avoids: LinkedIn's 400 for a start older than 12 months.
    headers = {"LinkedIn-Version": "202609", "X-Restli-Protocol-Version": "2.0.0"}
    begin = li.to_ms(li.midnight(start))
    query = (
        "q=organizationalEntity&organizationalEntity=urn%3Ali%3Aorganization%3A2000001"
        f"&timeIntervals=(timeRange:(start:{begin},end:{begin + 15 * li.DAY_MS}),"
        "timeGranularityType:DAY)"
    )
    refused = http.get(
        f"{sandbox.base_url}/rest/organizationalEntityFollowerStatistics?{query}",
        headers=headers,
        timeout=5,
    )
    assert refused.status_code == 400
    body = refused.json()
    assert body["status"] == 400 and "12 months" in body["message"]


# --------------------------------------------------------------------------- X


def own_posts(days: list[dt.date]) -> list[x_data.SyntheticTweet]:
    return [
        t
        for day in days
        for t in x_data.tweets_for_day(X_USER, day, CONFIG)
        if t.kind is not TweetKind.RETWEET
    ]


def test_x_range_listing_is_the_union_of_the_days_in_a_few_pages(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    range_calls, day_calls, listed = assert_union_of_days(
        lambda: x_client(sandbox, clock), START, END
    )
    posts = own_posts(DAYS)
    assert sorted(listed) == sorted(t.id for t in posts)
    assert range_calls == math.ceil(len(posts) / 100) == 3
    assert day_calls == 90
    first = sandbox.requests(X_USER)[0]
    assert "start_time=2026-08-22T00%3A00%3A00Z" in first.query
    assert "end_time=2026-11-20T00%3A00%3A00Z" in first.query


def test_x_range_account_metrics_are_one_snapshot_call_or_none(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    range_calls, day_calls, found = assert_account_days_match(
        lambda: x_client(sandbox, clock), START, END, END
    )
    assert found[END].followers_total == x_data.followers(X_USER, TODAY, CONFIG)
    assert all(m == AccountMetrics() for day, m in found.items() if day != END)
    assert (range_calls, day_calls) == (1, 1)
    quiet = x_client(sandbox, clock)
    assert quiet.fetch_account_metrics_between(START, END, snapshot_day=TODAY) == dict.fromkeys(
        DAYS, AccountMetrics()
    )
    assert quiet.api_calls == 0  # the snapshot day is outside the range


def test_x_range_listing_reaches_no_further_than_the_3200_most_recent_posts(
    clock: FixedClock,
) -> None:
    busy = SandboxConfig(posts_per_day=(60, 80))  # 3,200 posts are about 46 days
    with SandboxServer(clock=clock, config=busy) as server:
        clock.set(NOW)

        def make() -> XClient:
            return x_client(server, clock)

        floor = x_data.timeline_floor(X_USER, limit=3200, now=NOW, config=busy)
        assert floor is not None
        reachable = [
            t
            for day in DAYS
            for t in x_data.tweets_for_day(X_USER, day, busy)
            if t.sort_key() >= floor and t.kind is not TweetKind.RETWEET
        ]
        range_calls, day_calls, listed = assert_union_of_days(make, START, END)
        assert sorted(listed) == sorted(t.id for t in reachable)
        assert len(listed) < len([t for d in DAYS for t in x_data.tweets_for_day(X_USER, d, busy)])
        # The walk stops where X's timeline ends: at most 32 full pages, never the page cap.
        assert range_calls == math.ceil(len(reachable) / 100) <= 32
        assert day_calls >= 90
        # With exclude=replies X reaches only the 800 most recent posts.
        floor_800 = x_data.timeline_floor(X_USER, limit=800, now=NOW, config=busy)
        assert floor_800 is not None
        oldest_800 = x_data.snowflake_time(str(floor_800))
        assert oldest_800 is not None
        before_800 = oldest_800 - dt.timedelta(seconds=1)
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {TOKEN}"
            answers = {
                exclude: http.get(
                    f"{server.base_url}/2/users/{X_USER}/tweets",
                    params={
                        "end_time": before_800.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "exclude": exclude,
                    },
                    timeout=5,
                ).json()["meta"]["result_count"]
                for exclude in ("replies", "retweets")
            }
        assert answers == {"replies": 0, "retweets": 10}


def test_x_sandbox_refuses_a_start_time_after_end_time_or_before_2010(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    url = f"{sandbox.base_url}/2/users/{X_USER}/tweets"
    ok = http.get(
        url,
        params={"start_time": "2026-11-01T00:00:00Z", "end_time": "2026-11-01T00:00:00Z"},
        timeout=5,
    )
    assert ok.status_code == 200  # both ends are inclusive: an instant is a valid range
    for params, name, message in (
        (
            {"start_time": "2026-11-02T00:00:00Z", "end_time": "2026-11-01T00:00:00Z"},
            "start_time",
            "Invalid 'start_time':'2026-11-02T00:00Z'. 'start_time' must be on or before "
            "'end_time':'2026-11-01T00:00Z'",
        ),
        (
            {"start_time": "2009-01-01T00:00:00Z"},
            "start_time",
            "Invalid 'start_time':'2009-01-01T00:00Z'. 'start_time' must be on or after "
            "2010-11-06T00:00Z",
        ),
    ):
        refused = http.get(url, params=params, timeout=5)
        body = refused.json()
        assert refused.status_code == 400
        assert body["title"] == "Invalid Request"
        assert body["type"] == "https://api.twitter.com/2/problems/invalid-request"
        assert body["errors"] == [
            {"parameters": {name: [params[name]]}, "message": message},
        ]
