"""The LinkedIn sandbox over real HTTP (127.0.0.1 only), and the LinkedIn client against it:
wire format, determinism, Rest.li decoding, the 12-month window, fault switches, request log."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from analytics_pipeline.platforms.base import Account, PlatformError, Secret
from analytics_pipeline.platforms.http import RetryConfig
from analytics_pipeline.platforms.linkedin import LinkedInClient, LinkedInSettings
from analytics_pipeline.records import ContentFormat, ErrorClass, ValueKind
from analytics_sandbox import FixedClock, SandboxConfig, SandboxServer
from analytics_sandbox import linkedin_data as li
from analytics_sandbox.linkedin import raw_query_params, restli_decode

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
ORG = "urn:li:organization:2000001"
OTHER_ORG = "urn:li:organization:2000002"
TOKEN = "AQVsandboxLinkedInToken0123456789"
CONFIG = SandboxConfig(posts_per_day=(2, 6))
VERSION = "202609"
LI_FORMATS = {
    li.LiFormat.TEXT: ContentFormat.TEXT,
    li.LiFormat.IMAGE: ContentFormat.POST,
    li.LiFormat.VIDEO: ContentFormat.VIDEO,
    li.LiFormat.DOCUMENT: ContentFormat.CAROUSEL,
    li.LiFormat.ARTICLE: ContentFormat.LINK,
    li.LiFormat.MULTI_IMAGE: ContentFormat.CAROUSEL,
    li.LiFormat.POLL: ContentFormat.TEXT,
    li.LiFormat.RESHARE: ContentFormat.TEXT,
}


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(sandbox: SandboxServer, clock: FixedClock, waits: list[float]) -> LinkedInClient:
    return make_client(sandbox, clock, waits)


def make_client(
    sandbox: SandboxServer, clock: FixedClock, waits: list[float], org: str = ORG, **settings: Any
) -> LinkedInClient:
    retry = RetryConfig(backoff_base_s=0.01, backoff_max_s=0.01)
    config = LinkedInSettings(base_url=sandbox.base_url, retry=retry, **settings)
    return LinkedInClient(config, account(org), sleep=waits.append, clock=clock)


def account(org: str = ORG) -> Account:
    return Account("org-1", f"int-{org[-7:]}", "linkedin", org, Secret(TOKEN))


@pytest.fixture
def http(http: requests.Session) -> requests.Session:
    """The shared bearer-token client, with the headers every LinkedIn REST call carries."""
    http.headers.update({"LinkedIn-Version": VERSION, "X-Restli-Protocol-Version": "2.0.0"})
    return http


def day_ms(day: dt.date) -> int:
    return li.to_ms(li.midnight(day))


def interval(day: dt.date, days: int = 1) -> str:
    start = day_ms(day)
    return f"(timeRange:(start:{start},end:{start + days * li.DAY_MS}),timeGranularityType:DAY)"


def get(http: requests.Session, sandbox: SandboxServer, path: str, query: str) -> Any:
    return http.get(f"{sandbox.base_url}/rest/{path}?{query}", timeout=5)


ORG_ENC = "urn%3Ali%3Aorganization%3A2000001"


# --- the client end to end ---------------------------------------------------------------------


def test_client_lists_exactly_the_posts_of_the_day(client: LinkedInClient) -> None:
    day = NOW.date() - dt.timedelta(days=2)
    expected = li.posts_for_day(ORG, day, CONFIG)
    items = list(client.list_content(day))
    assert sorted(i.external_content_id for i in items) == sorted(p.urn for p in expected)
    by_urn = {p.urn: p for p in expected}
    for item in items:
        post = by_urn[item.external_content_id]
        assert item.published_at == post.published_at
        assert item.format is LI_FORMATS[post.format]
        assert item.permalink == f"https://www.linkedin.com/feed/update/{post.urn}"
        assert "{hashtag" not in (item.caption or "")
        assert all(tag == tag.lower() for tag in item.hashtags)
    assert any(i.hashtags for i in items)


def test_small_pages_give_the_same_listing(
    sandbox: SandboxServer, clock: FixedClock, waits: list[float]
) -> None:
    day = NOW.date() - dt.timedelta(days=3)
    big = make_client(sandbox, clock, waits)
    small = make_client(sandbox, clock, waits, page_size=2)
    listed_big = [i.external_content_id for i in big.list_content(day)]
    listed_small = [i.external_content_id for i in small.list_content(day)]
    assert listed_small == listed_big
    assert small.api_calls > big.api_calls >= 1


def _day_with_a_scheduled_post() -> tuple[dt.date, li.LiPost]:
    for back in range(1, 200):
        day = NOW.date() - dt.timedelta(days=back)
        for post in li.posts_for_day(ORG, day, CONFIG):
            if post.created_at.date() < post.day:
                return day, post
    raise AssertionError("the synthetic data has no post created the day before publication")


def test_a_scheduled_post_created_the_day_before_is_listed(client: LinkedInClient) -> None:
    day, post = _day_with_a_scheduled_post()
    assert post.urn in [i.external_content_id for i in client.list_content(day)]


def test_post_statistics_are_the_days_own_values(client: LinkedInClient) -> None:
    day = NOW.date() - dt.timedelta(days=5)
    posts = li.posts_for_day(ORG, day, CONFIG) + li.posts_for_day(
        ORG, day - dt.timedelta(days=1), CONFIG
    )
    batch = client.fetch_content_metrics([p.urn for p in posts], day)
    assert batch.skipped == ()
    assert [m.external_content_id for m in batch.metrics] == [p.urn for p in posts]
    for post, metrics in zip(posts, batch.metrics, strict=True):
        stats = li.post_day_stats(post, day, CONFIG)
        assert metrics.value_kind is ValueKind.DAILY
        assert metrics.impressions == stats.impressions
        assert metrics.reach == stats.unique_impressions
        assert (metrics.clicks, metrics.likes) == (stats.clicks, stats.likes)
        assert (metrics.comments, metrics.shares) == (stats.comments, stats.shares)
        assert metrics.views is None and metrics.video_views is None


def test_an_old_post_on_a_quiet_day_has_real_zeros(client: LinkedInClient) -> None:
    published = NOW.date() - dt.timedelta(days=200)
    post = li.posts_for_day(ORG, published, CONFIG)[0]
    day = NOW.date() - dt.timedelta(days=1)
    metrics = client.fetch_content_metrics([post.urn], day).metrics[0]
    assert (metrics.impressions, metrics.likes, metrics.comments) == (0, 0, 0)


def test_statistics_are_chunked_over_http(
    sandbox: SandboxServer, clock: FixedClock, waits: list[float]
) -> None:
    client = make_client(sandbox, clock, waits, stats_chunk_size=4)
    day = NOW.date() - dt.timedelta(days=1)
    posts = [
        p for back in range(1, 5) for p in li.posts_for_day(ORG, day - dt.timedelta(back), CONFIG)
    ]
    batch = client.fetch_content_metrics([p.urn for p in posts], day)
    assert len(batch.metrics) == len(posts)
    records = sandbox.requests(ORG)
    assert [r.batch_size for r in records] == [
        min(4, len(posts) - i) for i in range(0, len(posts), 4)
    ]


def test_account_metrics_match_the_synthetic_data(client: LinkedInClient) -> None:
    day = NOW.date() - dt.timedelta(days=3)
    metrics = client.fetch_account_metrics(day, include_snapshot=True)
    gain = li.follower_gain(ORG, day, CONFIG)
    org_stats = li.org_day_stats(ORG, day, CONFIG)
    assert metrics.followers_total == li.follower_total(ORG, NOW.date(), CONFIG)
    assert metrics.new_followers == gain.organic + gain.paid
    assert metrics.profile_views == li.page_views(ORG, day, CONFIG)
    assert (metrics.impressions, metrics.reach) == (
        org_stats.impressions,
        org_stats.unique_impressions,
    )
    assert (metrics.views, metrics.website_clicks) == (None, None)


def test_the_oldest_day_in_the_window_is_served_and_an_older_one_never_asked(
    sandbox: SandboxServer, client: LinkedInClient
) -> None:
    oldest = dt.date(2025, 11, 21)  # NOW is 2026-11-20 12:00
    post = li.posts_for_day(ORG, oldest, CONFIG)[0]
    assert len(client.fetch_content_metrics([post.urn], oldest).metrics) == 1
    assert sandbox.request_count() == 1
    too_old = oldest - dt.timedelta(days=1)
    assert client.fetch_content_metrics([post.urn], too_old).metrics == ()
    metrics = client.fetch_account_metrics(too_old, include_snapshot=False)
    assert metrics.null_count() == 7
    assert sandbox.request_count() == 1  # no 400 was provoked: the client clamped first


def test_the_same_request_gives_the_same_bytes(
    sandbox: SandboxServer, http: requests.Session, clock: FixedClock
) -> None:
    day = NOW.date() - dt.timedelta(days=4)
    query = (
        f"q=organizationalEntity&organizationalEntity={ORG_ENC}&timeIntervals={interval(day, 3)}"
    )
    first = get(http, sandbox, "organizationalEntityShareStatistics", query)
    with SandboxServer(clock=clock, config=CONFIG) as second_server:
        second = get(http, second_server, "organizationalEntityShareStatistics", query)
    assert first.status_code == 200
    assert first.content == second.content
    assert len(first.json()["elements"]) == 3


# --- faults through the client -----------------------------------------------------------------


def test_expired_token_is_a_credential_error(
    sandbox: SandboxServer, clock: FixedClock, waits: list[float], client: LinkedInClient
) -> None:
    sandbox.faults.expire_token(ORG)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(NOW.date()))
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert raised.value.code == "EXPIRED_ACCESS_TOKEN"
    (record,) = sandbox.requests(ORG)
    assert (record.status, record.fault, record.error_code) == (401, "expired_token", 65602)
    # Another organization is not affected.
    other = make_client(sandbox, clock, waits, org=OTHER_ORG)
    assert list(other.list_content(NOW.date())) is not None


def test_permission_denied_is_a_credential_error(
    sandbox: SandboxServer, client: LinkedInClient
) -> None:
    sandbox.faults.update(permission_denied_accounts=[ORG])
    with pytest.raises(PlatformError) as raised:
        client.fetch_account_metrics(NOW.date(), include_snapshot=True)
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert raised.value.code == "ACCESS_DENIED"
    assert raised.value.http_status == 403
    assert sandbox.request_count() == 1


def test_daily_quota_stops_until_midnight_without_retrying(
    sandbox: SandboxServer, client: LinkedInClient, waits: list[float]
) -> None:
    sandbox.faults.update(quota_exhausted_accounts=[ORG])
    with pytest.raises(PlatformError) as raised:
        client.fetch_content_metrics([f"urn:li:share:7{'0' * 10}"], NOW.date())
    error = raised.value
    assert error.error_class is ErrorClass.TRANSIENT
    assert error.code == "daily_quota"
    assert error.retry_after == 12 * 3600  # NOW is 12:00 UTC
    assert waits == []
    assert sandbox.request_count() == 1


def test_transient_failures_are_retried(
    sandbox: SandboxServer, client: LinkedInClient, waits: list[float]
) -> None:
    sandbox.faults.fail_next(ORG, 3)  # cycle: 429 with Retry-After, 500 JSON, 503 HTML
    day = NOW.date() - dt.timedelta(days=1)
    items = list(client.list_content(day))
    assert len(items) == len(li.posts_for_day(ORG, day, CONFIG))
    statuses = [(r.status, r.fault) for r in sandbox.requests(ORG)]
    assert statuses == [
        (429, "transient:page_limit"),
        (500, "transient:server_error"),
        (503, "transient:unavailable"),
        (200, None),
    ]
    assert waits[0] == 1.0  # the throttle's Retry-After


def test_sunset_version_is_a_config_error_naming_the_setting(
    sandbox: SandboxServer, clock: FixedClock, waits: list[float]
) -> None:
    sandbox.faults.update(sunset_api_versions=["202409"])
    client = make_client(sandbox, clock, waits, api_version="202409")
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(NOW.date()))
    assert raised.value.error_class is ErrorClass.PERMANENT_CONFIG
    assert raised.value.code == "NONEXISTENT_VERSION"
    assert "ANALYTICS_LINKEDIN_API_VERSION" in raised.value.message
    (record,) = sandbox.requests()
    assert (record.status, record.fault) == (426, "sunset_version")
    # The current version still works.
    assert list(make_client(sandbox, clock, waits).list_content(NOW.date())) is not None


def test_a_deleted_post_vanishes_from_listing_and_statistics(
    sandbox: SandboxServer, client: LinkedInClient
) -> None:
    day = NOW.date() - dt.timedelta(days=2)
    posts = li.posts_for_day(ORG, day, CONFIG)
    gone = posts[0].urn
    sandbox.faults.delete_post(gone)
    listed = [i.external_content_id for i in client.list_content(day)]
    assert gone not in listed and len(listed) == len(posts) - 1
    batch = client.fetch_content_metrics([p.urn for p in posts], day)
    assert [s.external_content_id for s in batch.skipped] == [gone]
    assert batch.skipped[0].code == "no_statistics"
    assert len(batch.metrics) == len(posts) - 1


def test_request_log_names_the_organization_and_never_the_token(
    sandbox: SandboxServer, client: LinkedInClient
) -> None:
    sandbox.faults.latency_ms = 5
    day = NOW.date() - dt.timedelta(days=1)
    client.fetch_account_metrics(day, include_snapshot=True)
    records = sandbox.requests()
    assert len(records) == 4
    for record in records:
        assert record.page_ids == (ORG,)
        assert record.authorization_present and not record.access_token_in_query
        assert TOKEN not in record.query and TOKEN not in str(record.to_dict())
        assert record.latency_ms == 5
    assert records[0].path == f"/rest/networkSizes/{ORG}"
    assert sandbox.requests(OTHER_ORG) == []


# --- the wire format directly ------------------------------------------------------------------


def test_posts_wire_format_and_paging(sandbox: SandboxServer, http: requests.Session) -> None:
    query = f"author={ORG_ENC}&q=author&count=3&start=0&sortBy=CREATED"
    body = get(http, sandbox, "posts", query).json()
    assert set(body) == {"paging", "elements"}
    assert body["paging"]["start"] == 0 and body["paging"]["count"] == 3
    assert body["paging"]["total"] == li.count_posts(ORG, NOW, CONFIG)
    assert [link["rel"] for link in body["paging"]["links"]] == ["next"]
    created = [e["createdAt"] for e in body["elements"]]
    assert created == sorted(created, reverse=True) and len(created) == 3
    element = body["elements"][0]
    assert element["author"] == ORG
    assert element["lifecycleState"] == "PUBLISHED"
    assert element["id"].startswith(("urn:li:share:", "urn:li:ugcPost:"))
    assert element["publishedAt"] <= li.to_ms(NOW)
    second = get(http, sandbox, "posts", query.replace("start=0", "start=3")).json()
    assert {e["id"] for e in second["elements"]}.isdisjoint(e["id"] for e in body["elements"])


def test_posts_last_page_is_short(sandbox: SandboxServer, http: requests.Session) -> None:
    total = li.count_posts(ORG, NOW, CONFIG)
    query = f"author={ORG_ENC}&q=author&count=100&start={total - 2}&sortBy=CREATED"
    body = get(http, sandbox, "posts", query).json()
    assert len(body["elements"]) == 2
    assert "next" not in [link["rel"] for link in body["paging"]["links"]]


def test_every_synthetic_format_is_served() -> None:
    seen = {
        post.format
        for back in range(0, 60)
        for post in li.posts_for_day(ORG, NOW.date() - dt.timedelta(days=back), CONFIG)
    }
    assert seen == set(li.LiFormat)


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Authorization": None}, 401, None),
        ({"LinkedIn-Version": None}, 400, "VERSION_MISSING"),
        ({"LinkedIn-Version": "2026-09"}, 426, "NONEXISTENT_VERSION"),
        ({"X-Restli-Protocol-Version": None}, 400, None),
    ],
)
def test_header_checks(
    sandbox: SandboxServer,
    http: requests.Session,
    headers: dict[str, str | None],
    status: int,
    code: str | None,
) -> None:
    for name, value in headers.items():
        if value is None:
            del http.headers[name]
        else:
            http.headers[name] = value
    reply = get(http, sandbox, "posts", f"author={ORG_ENC}&q=author")
    assert reply.status_code == status
    body = reply.json()
    assert body["status"] == status
    assert body.get("code") == code


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        # a start older than 12 months (NOW is 2026-11-20 12:00): rejected like LinkedIn does
        (f"timeIntervals={interval(dt.date(2025, 11, 20))}", "12 months"),
        (
            f"timeIntervals=(timeRange:(start:{day_ms(NOW.date())},end:"
            f"{day_ms(NOW.date()) + 3_600_000}),timeGranularityType:DAY)",
            "at least one day",
        ),
        ("timeIntervals=(timeRange:(start:1),timeGranularityType:DAY)", "integer start and end"),
        ("timeIntervals=(timeRange:(start:1,end:2", "Invalid value"),
        ("shares=urn%3Ali%3Ashare%3A1", "List("),
    ],
)
def test_statistics_validation(
    sandbox: SandboxServer, http: requests.Session, query: str, fragment: str
) -> None:
    base = f"q=organizationalEntity&organizationalEntity={ORG_ENC}&"
    reply = get(http, sandbox, "organizationalEntityShareStatistics", base + query)
    assert reply.status_code == 400
    assert fragment in reply.json()["message"]


def test_statistics_buckets_and_lifetime(sandbox: SandboxServer, http: requests.Session) -> None:
    post = li.posts_for_day(ORG, NOW.date() - dt.timedelta(days=2), CONFIG)[0]
    key = "shares" if post.kind == "share" else "ugcPosts"
    urn = post.urn.replace(":", "%3A")
    start_day = NOW.date() - dt.timedelta(days=4)
    base = f"q=organizationalEntity&organizationalEntity={ORG_ENC}&{key}=List({urn})"
    body = get(
        http,
        sandbox,
        "organizationalEntityShareStatistics",
        f"{base}&timeIntervals={interval(start_day, 6)}",
    ).json()
    # Buckets from the publication day on, none starting after NOW (the 6th would be tomorrow).
    days = [e["timeRange"]["start"] for e in body["elements"]]
    assert days == [day_ms(NOW.date() - dt.timedelta(days=d)) for d in (2, 1, 0)]
    assert all(e[post.kind] == post.urn for e in body["elements"])
    lifetime = get(http, sandbox, "organizationalEntityShareStatistics", base).json()["elements"]
    assert len(lifetime) == 1 and "timeRange" not in lifetime[0]
    assert lifetime[0]["totalShareStatistics"]["impressionCount"] >= sum(
        e["totalShareStatistics"]["impressionCount"] for e in body["elements"]
    )


def test_a_post_of_another_organization_gets_no_statistics(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    post = li.posts_for_day(OTHER_ORG, NOW.date() - dt.timedelta(days=1), CONFIG)[0]
    key = "shares" if post.kind == "share" else "ugcPosts"
    query = (
        f"q=organizationalEntity&organizationalEntity={ORG_ENC}&{key}="
        f"List({post.urn.replace(':', '%3A')})&timeIntervals={interval(NOW.date())}"
    )
    reply = get(http, sandbox, "organizationalEntityShareStatistics", query)
    assert reply.status_code == 200 and reply.json()["elements"] == []


def test_follower_and_page_statistics_wire_format(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    day = NOW.date() - dt.timedelta(days=1)
    followers = get(
        http,
        sandbox,
        "organizationalEntityFollowerStatistics",
        f"q=organizationalEntity&organizationalEntity={ORG_ENC}&timeIntervals={interval(day)}",
    ).json()["elements"]
    gain = li.follower_gain(ORG, day, CONFIG)
    assert followers == [
        {
            "timeRange": {"start": day_ms(day), "end": day_ms(day) + li.DAY_MS},
            "followerGains": {"organicFollowerGain": gain.organic, "paidFollowerGain": gain.paid},
            "organizationalEntity": ORG,
        }
    ]
    pages = get(
        http,
        sandbox,
        "organizationPageStatistics",
        f"q=organization&organization={ORG_ENC}&timeIntervals={interval(day)}",
    ).json()["elements"]
    assert pages[0]["totalPageStatistics"]["views"]["allPageViews"]["pageViews"] == li.page_views(
        ORG, day, CONFIG
    )


def test_network_size_and_unknown_paths(sandbox: SandboxServer, http: requests.Session) -> None:
    url = f"{sandbox.base_url}/rest/networkSizes/{ORG_ENC}"
    good = http.get(url, params={"edgeType": "COMPANY_FOLLOWED_BY_MEMBER"}, timeout=5)
    assert good.json() == {"firstDegreeSize": li.follower_total(ORG, NOW.date(), CONFIG)}
    bad = http.get(url, params={"edgeType": "COMPANY_FOLLOWED_BY_COMPANY"}, timeout=5)
    assert bad.status_code == 400
    unknown = http.get(f"{sandbox.base_url}/rest/organizationAcls", timeout=5)
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "RESOURCE_NOT_FOUND"


def test_an_unknown_organization_is_not_administered(clock: FixedClock, waits: list[float]) -> None:
    config = SandboxConfig(known_pages=frozenset({ORG}))
    with SandboxServer(clock=clock, config=config) as only_one:
        client = make_client(only_one, clock, waits)
        assert list(client.list_content(NOW.date() - dt.timedelta(days=1)))
        with pytest.raises(PlatformError) as raised:
            list(make_client(only_one, clock, waits, org=OTHER_ORG).list_content(NOW.date()))
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL


# --- Rest.li decoding and data helpers ---------------------------------------------------------


def test_restli_decode() -> None:
    assert restli_decode("List(urn%3Ali%3Ashare%3A1,urn%3Ali%3Ashare%3A2)") == [
        "urn:li:share:1",
        "urn:li:share:2",
    ]
    assert restli_decode("(timeRange:(start:1,end:2),timeGranularityType:DAY)") == {
        "timeRange": {"start": "1", "end": "2"},
        "timeGranularityType": "DAY",
    }
    assert restli_decode("List()") == []
    assert restli_decode("a%2Cb") == "a,b"  # an encoded comma is data, not structure
    for broken in ("List(a", "(a:(b)", "(novalue)", "a,b"):
        with pytest.raises(ValueError):
            restli_decode(broken)
    assert raw_query_params("a=List(x%3A1)&q=author&&b") == {
        "a": "List(x%3A1)",
        "q": "author",
        "b": "",
    }


def test_post_urns_decode_back_to_their_posts() -> None:
    for back in range(1, 5):
        for post in li.posts_for_day(ORG, NOW.date() - dt.timedelta(days=back), CONFIG):
            assert li.decode_post_urn(post.urn, CONFIG) == post
            other_kind = "ugcPost" if post.kind == "share" else "share"
            assert li.decode_post_urn(post.urn.replace(post.kind, other_kind), CONFIG) is None
    assert li.decode_post_urn("urn:li:share:123", CONFIG) is None
    assert li.decode_post_urn("urn:li:share:7" + "9" * 20, CONFIG) is None


def test_created_desc_iteration_is_ordered_and_complete() -> None:
    config = SandboxConfig(posts_per_day=(1, 4), history_days=30)
    posts = list(li.iter_posts_created_desc(ORG, NOW, config))
    keys = [(p.created_at, p.urn) for p in posts]
    assert keys == sorted(keys, reverse=True)
    assert len(posts) == li.count_posts(ORG, NOW, config)
    assert all(p.published_at <= NOW for p in posts)
