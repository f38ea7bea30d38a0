"""The X sandbox over real HTTP (127.0.0.1 only), and the X client against it: wire format,
determinism, every fault switch, the request log."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
import requests

from analytics_pipeline.platforms.base import Account, PlatformError, Secret
from analytics_pipeline.platforms.http import RetryConfig
from analytics_pipeline.platforms.x import ReferenceType, XClient, XSettings, create_session
from analytics_pipeline.records import ContentFormat, ErrorClass
from analytics_sandbox import FixedClock, SandboxConfig, SandboxServer, x_data
from analytics_sandbox.x_data import Attachment, SyntheticTweet, TweetKind

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
USER = "3000001"
OTHER_USER = "3000002"
TOKEN = "sandbox-x-token-value"
CONFIG = SandboxConfig(posts_per_day=(2, 6))
CONFIG_ERROR = ErrorClass.PERMANENT_CONFIG
ACCOUNT = Account("org-1", "int-x-1", "x", USER, Secret(TOKEN))


# --- fixtures and helpers ----------------------------------------------------------------------


def make_client(
    sandbox: SandboxServer, clock: FixedClock, account: Account = ACCOUNT, **overrides: Any
) -> tuple[XClient, list[float]]:
    settings = XSettings(base_url=sandbox.base_url, **overrides)
    waits: list[float] = []
    session = create_session(settings, sleep=waits.append)
    return XClient(settings, account, session=session, clock=clock), waits


def own_tweets(day: dt.date, user: str = USER) -> list[SyntheticTweet]:
    """What a listing of `day` must return: the user's posts without retweets, newest first."""
    tweets = [
        t for t in x_data.tweets_for_day(user, day, CONFIG) if t.kind is not TweetKind.RETWEET
    ]
    return sorted(tweets, key=SyntheticTweet.sort_key, reverse=True)


def days_back(count: int) -> list[dt.date]:
    return [NOW.date() - dt.timedelta(days=offset) for offset in range(1, count + 1)]


def recent_ids(count: int = 10) -> list[str]:
    return [t.id for day in days_back(count) for t in own_tweets(day)]


_EXPECTED_FORMAT = {
    Attachment.NONE: ContentFormat.TEXT,
    Attachment.PHOTO: ContentFormat.POST,
    Attachment.PHOTOS: ContentFormat.CAROUSEL,
    Attachment.VIDEO: ContentFormat.VIDEO,
    Attachment.GIF: ContentFormat.VIDEO,
    Attachment.LINK: ContentFormat.LINK,
}


# --- the client against the sandbox ------------------------------------------------------------


def test_listing_matches_the_synthetic_posts(sandbox: SandboxServer, clock: FixedClock) -> None:
    client, _ = make_client(sandbox, clock)
    seen_kinds: set[TweetKind] = set()
    for day in days_back(14):
        expected = own_tweets(day)
        posts = list(client.list_posts(day))
        assert [p.item.external_content_id for p in posts] == [t.id for t in expected]
        for post, tweet in zip(posts, expected, strict=True):
            seen_kinds.add(tweet.kind)
            assert post.item.published_at == tweet.created_at
            assert post.item.format is _EXPECTED_FORMAT[tweet.attachment]
            assert post.item.caption == (tweet.note_text or tweet.text)
            assert post.item.permalink == f"https://x.com/sbx{USER}/status/{tweet.id}"
            expected_ref = None if tweet.kind is TweetKind.ORIGINAL else ReferenceType(tweet.kind)
            assert post.reference_type is expected_ref
            common = {None: None, TweetKind.QUOTE: "quote", TweetKind.REPLY: "reply"}
            assert post.item.reference_type == common.get(tweet.kind)
            tags = (tweet.note_entities or tweet.entities).hashtags
            assert post.item.hashtags == tuple(dict.fromkeys(h.tag.casefold() for h in tags))
    assert seen_kinds == {TweetKind.ORIGINAL, TweetKind.QUOTE, TweetKind.REPLY}
    assert client.api_calls == 14


def test_listing_pages_through_next_token(sandbox: SandboxServer, clock: FixedClock) -> None:
    day = next(d for d in days_back(120) if len(own_tweets(d)) == 6)
    client, _ = make_client(sandbox, clock, page_size=5)
    posts = list(client.list_content(day))
    assert [p.external_content_id for p in posts] == [t.id for t in own_tweets(day)]
    records = sandbox.requests(USER)
    assert len(records) == client.api_calls == 2  # 5 + 1, retweets filtered by the server
    assert all(r.page_ids == (USER,) and r.authorization_present for r in records)
    assert not any(r.access_token_in_query or TOKEN in r.query for r in records)
    assert "pagination_token" not in records[0].query
    assert "pagination_token" in records[1].query and "exclude=retweets" in records[1].query


def test_metrics_match_the_synthetic_values(sandbox: SandboxServer, clock: FixedClock) -> None:
    ids = recent_ids(40)  # past the 30-day window too
    client, _ = make_client(sandbox, clock)
    batch = client.fetch_content_metrics(ids, NOW.date())
    assert [m.external_content_id for m in batch.metrics] == ids and batch.skipped == ()
    window = dt.timedelta(days=30) - dt.timedelta(hours=1)  # the client's margin
    young = [i for i in ids if NOW - x_data.snowflake_time(i) < window]  # type: ignore[operator]
    assert client.api_calls == -(-len(young) // 100) + -(-(len(ids) - len(young)) // 100)
    video_seen = link_seen = False
    for metrics in batch.metrics:
        tweet = x_data.decode_tweet_id(metrics.external_content_id, CONFIG)
        assert tweet is not None
        truth = x_data.metrics_for(tweet, NOW.date(), CONFIG)
        assert (metrics.impressions, metrics.likes, metrics.comments, metrics.saves) == (
            truth.impressions,
            truth.likes,
            truth.replies,
            truth.bookmarks,
        )
        assert metrics.shares == truth.retweets + truth.quotes
        if tweet.id in young:
            link = truth.link_clicks or 0
            assert metrics.clicks == truth.profile_clicks + link
            link_seen |= truth.link_clicks is not None
        else:  # older than 30 days: private metrics not asked, clicks unknown
            assert metrics.clicks is None
        if truth.media_views:
            video_seen = True
            assert metrics.video_views == sum(v for _, v in truth.media_views)
        else:
            assert metrics.video_views is None
    assert video_seen and link_seen


def test_lifetime_metrics_grow_and_repeat_per_observation_date(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    ids = recent_ids(3)
    client, _ = make_client(sandbox, clock)
    first = client.fetch_content_metrics(ids, NOW.date()).metrics
    clock.set(NOW + dt.timedelta(hours=3))  # same UTC date: same numbers
    assert client.fetch_content_metrics(ids, NOW.date()).metrics == first
    clock.set(NOW + dt.timedelta(days=2))
    later = client.fetch_content_metrics(ids, NOW.date()).metrics
    assert all(b.impressions >= a.impressions for a, b in zip(first, later, strict=True))  # type: ignore[operator]
    assert sum(m.impressions or 0 for m in later) > sum(m.impressions or 0 for m in first)


def test_account_metrics(sandbox: SandboxServer, clock: FixedClock) -> None:
    client, _ = make_client(sandbox, clock)
    metrics = client.fetch_account_metrics(NOW.date(), include_snapshot=True)
    assert metrics.followers_total == x_data.followers(USER, NOW.date(), CONFIG)
    assert metrics.null_count() == 6
    assert client.fetch_account_metrics(NOW.date(), include_snapshot=False).null_count() == 7
    assert client.api_calls == 1


# --- fault switches ----------------------------------------------------------------------------


def test_deleted_posts_are_skipped_and_gone_from_the_timeline(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    day = next(d for d in days_back(30) if len(own_tweets(d)) >= 2)
    gone = own_tweets(day)[0].id
    sandbox.faults.delete_post(gone)
    client, _ = make_client(sandbox, clock)
    listed = [i.external_content_id for i in client.list_content(day)]
    assert gone not in listed and listed == [t.id for t in own_tweets(day)[1:]]
    batch = client.fetch_content_metrics([gone, *listed], NOW.date())
    assert [m.external_content_id for m in batch.metrics] == listed
    assert [(s.external_content_id, s.code) for s in batch.skipped] == [
        (gone, "resource-not-found")
    ]


def test_app_only_token_gets_public_metrics_and_null_clicks(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    sandbox.faults.update(app_only_accounts=[USER])
    ids = recent_ids(3)
    client, _ = make_client(sandbox, clock)
    batch = client.fetch_content_metrics(ids, NOW.date())
    assert len(batch.metrics) == len(ids) and batch.skipped == ()
    assert all(m.clicks is None and m.impressions is not None for m in batch.metrics)
    faults = [r.fault for r in sandbox.requests(USER)]
    assert faults == ["app_only", None]  # refused once, then asked without private fields
    client.fetch_content_metrics(ids, NOW.date())
    assert "non_public_metrics" not in sandbox.requests(USER)[-1].query


def test_expired_token_is_a_401_credential_error(sandbox: SandboxServer, clock: FixedClock) -> None:
    sandbox.faults.expire_token(USER)
    client, _ = make_client(sandbox, clock)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(days_back(1)[0]))
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert raised.value.http_status == 401 and client.api_calls == 1
    assert TOKEN not in str(raised.value)
    other, _ = make_client(
        sandbox, clock, Account("org-1", "int-x-2", "x", OTHER_USER, Secret(TOKEN))
    )
    assert other.fetch_account_metrics(NOW.date(), include_snapshot=True).followers_total


def test_permission_denied_is_a_403_credential_error(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    sandbox.faults.update(permission_denied_accounts=[USER])
    client, _ = make_client(sandbox, clock)
    with pytest.raises(PlatformError) as raised:
        client.fetch_content_metrics(recent_ids(2), NOW.date())
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert (raised.value.http_status, raised.value.code) == (403, "client-forbidden")
    assert [r.fault for r in sandbox.requests(USER)] == ["permission_denied"]


def test_usage_cap_stops_at_once(sandbox: SandboxServer, clock: FixedClock) -> None:
    sandbox.faults.update(quota_exhausted_accounts=[USER])
    client, waits = make_client(sandbox, clock)
    with pytest.raises(PlatformError) as raised:
        client.fetch_account_metrics(NOW.date(), include_snapshot=True)
    error = raised.value
    assert (error.error_class, error.code, error.http_status) == (
        ErrorClass.TRANSIENT,
        "usage-capped",
        429,
    )
    assert error.retry_after is not None and error.retry_after > client.settings.retry.max_wait_s
    assert waits == [] and client.api_calls == 1


@pytest.mark.parametrize(
    ("kind", "status"), [("page_limit", 429), ("server_error", 503), ("unavailable", 503)]
)
def test_transient_failures_are_retried(
    sandbox: SandboxServer, clock: FixedClock, kind: str, status: int
) -> None:
    sandbox.faults.update(transient_kind=kind)
    sandbox.faults.fail_next(USER, 2)
    client, waits = make_client(sandbox, clock)
    metrics = client.fetch_account_metrics(NOW.date(), include_snapshot=True)
    assert metrics.followers_total is not None
    records = sandbox.requests(USER)
    assert [r.status for r in records] == [status, status, 200]
    assert [r.fault for r in records][:2] == [f"transient:{kind}"] * 2
    assert len(waits) == 2
    if kind == "page_limit":  # waits until x-rate-limit-reset, about a second ahead
        assert all(1.0 <= w <= 3.0 for w in waits)


def test_rate_limit_usage_at_100_pct_pauses_the_next_request(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    sandbox.faults.rate_limit_usage_pct = 100
    client, waits = make_client(sandbox, clock, retry=RetryConfig(max_wait_s=0.5))
    client.fetch_account_metrics(NOW.date(), include_snapshot=True)
    assert sandbox.requests(USER)[-1].status == 200
    with pytest.raises(PlatformError) as raised:  # the window reopens > max_wait_s from now
        client.fetch_account_metrics(NOW.date(), include_snapshot=True)
    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert client.api_calls == 1 and waits == []


@pytest.mark.parametrize(("version", "status"), [("2", 403), ("1.1", 403), ("3", 404)])
def test_sunset_or_unknown_versions_are_config_errors(
    sandbox: SandboxServer, clock: FixedClock, version: str, status: int
) -> None:
    sandbox.faults.update(sunset_api_versions=["2"])
    client, _ = make_client(sandbox, clock, api_version=version)
    with pytest.raises(PlatformError) as raised:
        client.fetch_account_metrics(NOW.date(), include_snapshot=True)
    assert raised.value.error_class is CONFIG_ERROR
    assert raised.value.http_status == status
    assert "ANALYTICS_X_API_VERSION" in raised.value.message
    assert client.api_calls == 1


def test_latency_switch_is_applied_and_recorded(sandbox: SandboxServer, clock: FixedClock) -> None:
    sandbox.faults.latency_ms = 30
    client, _ = make_client(sandbox, clock)
    client.fetch_account_metrics(NOW.date(), include_snapshot=True)
    assert sandbox.requests(USER)[-1].latency_ms == 30


# --- wire format -------------------------------------------------------------------------------


def test_default_fields_and_expansions(sandbox: SandboxServer, http: requests.Session) -> None:
    tweet = own_tweets(days_back(1)[0])[0]
    reply = http.get(f"{sandbox.base_url}/2/tweets", params={"ids": tweet.id})
    assert reply.status_code == 200
    assert reply.json() == {
        "data": [{"id": tweet.id, "text": tweet.text, "edit_history_tweet_ids": [tweet.id]}]
    }
    assert int(reply.headers["x-rate-limit-remaining"]) < int(reply.headers["x-rate-limit-limit"])
    media_tweet = next(t for d in days_back(30) for t in own_tweets(d) if t.media)
    body = http.get(
        f"{sandbox.base_url}/2/tweets",
        params={"ids": media_tweet.id, "expansions": "attachments.media_keys,author_id"},
    ).json()
    assert body["data"][0]["attachments"]["media_keys"] == [m.media_key for m in media_tweet.media]
    assert body["data"][0]["author_id"] == USER  # an expansion brings its field along
    assert [m["media_key"] for m in body["includes"]["media"]] == [
        m.media_key for m in media_tweet.media
    ]
    assert body["includes"]["users"] == [
        {"id": USER, "name": f"Sandbox X {USER}", "username": f"sbx{USER}"}
    ]


def test_entity_offsets_point_at_the_text(sandbox: SandboxServer, http: requests.Session) -> None:
    long_post = next(t for d in days_back(120) for t in own_tweets(d) if t.note_text)
    ids = [*recent_ids(20)[:99], long_post.id]
    body = http.get(
        f"{sandbox.base_url}/2/tweets",
        params={"ids": ",".join(ids), "tweet.fields": "entities,note_tweet"},
    ).json()
    checked = 0
    for tweet in body["data"]:
        assert len(tweet["text"]) <= 280
        for where in (tweet, tweet.get("note_tweet", {})):
            text, entities = where.get("text", ""), where.get("entities", {})
            for tag in entities.get("hashtags", []):
                assert text[tag["start"] : tag["end"]] == f"#{tag['tag']}"
                checked += 1
            for url in entities.get("urls", []):
                assert text[url["start"] : url["end"]] == url["url"]
    assert checked > 10
    assert body["data"][-1]["note_tweet"]["text"] == long_post.note_text


@pytest.mark.parametrize(
    "params",
    [
        {"ids": ",".join(str(i) for i in range(1, 102))},
        {"ids": "12a"},
        {},
        {"ids": "1", "tweet.fields": "impressions"},
        {"ids": "1", "expansions": "everything"},
    ],
)
def test_invalid_requests_are_400_problems(
    sandbox: SandboxServer, http: requests.Session, params: dict[str, str]
) -> None:
    reply = http.get(f"{sandbox.base_url}/2/tweets", params=params)
    assert reply.status_code == 400
    body = reply.json()
    assert body["type"].endswith("/invalid-request") and body["errors"][0]["parameters"]


def test_timeline_window_and_validation(sandbox: SandboxServer, http: requests.Session) -> None:
    url = f"{sandbox.base_url}/2/users/{USER}/tweets"
    assert http.get(url, params={"max_results": "4"}).status_code == 400
    assert http.get(url, params={"start_time": "yesterday"}).status_code == 400
    assert http.get(f"{sandbox.base_url}/2/users/abc/tweets").status_code == 400
    unknown = http.get(f"{sandbox.base_url}/2/users/0123/tweets").json()
    assert unknown["errors"][0]["type"].endswith("/resource-not-found")
    future = http.get(url, params={"start_time": "2026-11-21T00:00:00Z"}).json()
    assert future == {"meta": {"result_count": 0}}  # nothing after the sandbox clock
    day = days_back(1)[0]
    with_retweets = http.get(
        url,
        params={
            "start_time": f"{day}T00:00:00Z",
            "end_time": f"{day}T23:59:59Z",
            "max_results": "100",
        },
    ).json()
    every = sorted(x_data.tweets_for_day(USER, day, CONFIG), key=SyntheticTweet.sort_key)
    assert [t["id"] for t in with_retweets.get("data", [])] == [t.id for t in reversed(every)]


def test_unauthenticated_requests_get_401(sandbox: SandboxServer) -> None:
    reply = requests.get(
        f"{sandbox.base_url}/2/users/{USER}", params={"access_token": TOKEN}, timeout=10
    )
    assert reply.status_code == 401
    assert reply.json()["title"] == "Unauthorized"
    record = sandbox.requests(USER)[-1]
    assert record.access_token_in_query and TOKEN not in record.query


# --- synthetic data ----------------------------------------------------------------------------


def test_ids_are_snowflakes_that_resolve_back() -> None:
    for day in days_back(20):
        for tweet in x_data.tweets_for_day("2244994945", day, CONFIG):
            assert x_data.decode_tweet_id(tweet.id, CONFIG) == tweet
            assert x_data.author_of(tweet.id, CONFIG) == "2244994945"
            created = x_data.snowflake_time(tweet.id)
            assert created is not None
            assert created.replace(microsecond=0) == tweet.created_at
    assert x_data.decode_tweet_id("1228393702244134912", CONFIG) is None
    assert x_data.author_of("123", CONFIG) is None
    assert not x_data.user_exists(str(x_data.MAX_USER_ID + 1))
    assert not x_data.user_exists("42", SandboxConfig(known_pages=frozenset({"43"})))


def test_metrics_never_decrease_with_the_observation_date() -> None:
    tweet = own_tweets(days_back(3)[0])[0]
    series = [
        x_data.metrics_for(tweet, NOW.date() + dt.timedelta(days=d), CONFIG) for d in range(-5, 10)
    ]
    assert series[0].impressions == 0  # observed before it was published
    for before, after in itertools.pairwise(series):
        assert after.impressions >= before.impressions and after.likes >= before.likes
    assert series[-1].impressions > series[5].impressions
