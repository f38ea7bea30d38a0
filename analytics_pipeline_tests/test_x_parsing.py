"""X API v2 client: parsing and classification against recorded payloads, pagination, the
private-metrics fallback, batching, rate limits and usage caps (scripted transport, no socket)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from analytics_pipeline.platforms.base import Account, PlatformClient, PlatformError, Secret
from analytics_pipeline.platforms.http import RetryConfig
from analytics_pipeline.platforms.x import (
    ReferenceType,
    XClient,
    XSettings,
    classify_response,
    create_session,
    detect_format,
    parse_partial_errors,
    parse_tweet,
    parse_tweet_metrics,
    rate_limit_pause,
    snowflake_time,
    usage_cap_reset,
)
from analytics_pipeline.records import AccountMetrics, ContentFormat, ErrorClass, ValueKind
from analytics_pipeline.settings import SettingsError
from analytics_pipeline_tests.fakes import (
    Payloads,
    Reply,
    ScriptedAdapter,
    assert_token_only_in_header,
    scripted_session,
)
from analytics_pipeline_tests.fakes import response_of as _response_of
from analytics_pipeline_tests.helpers import settings_from_env

PAYLOADS = Payloads("x")
load = PAYLOADS.load
reply = PAYLOADS.reply
USER = "3000001"
TOKEN = "x-user-context-TOKEN-0123456789abcdef"
DAY = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)  # the recorded posts are 2-4 days old
WALL = 1795219200.0  # 2026-11-21T00:00:00Z; the recorded 429 resets 30 s later
BASE = "https://api.x.com"
CONFIG_ERROR = ErrorClass.PERMANENT_CONFIG

# Post ids of the recordings (snowflakes of their created_at).
P1, P2, P3, P4, P5, P6, P7 = (
    "2123894170711334913",
    "2123839472792870914",
    "2123801036191014915",
    "2123750993949990916",
    "2123714428007718917",
    "2123677778179366918",
    "2123642491499814919",
)
P8, P9, P10 = "2123620735644966920", "2123929381893414921", "2123566994027814922"
DELETED, PROTECTED = "2123325402117414923", "2123340501611814924"
OLD_A, OLD_B = "2122993213240614925", "2123008312735014926"

ACCOUNT = Account(
    organization_id="org-1",
    integration_id="int-x-1",
    platform="x",
    external_account_id=USER,
    token=Secret(TOKEN),
)


def response_of(step: Reply, url: str = f"{BASE}/2/tweets") -> requests.Response:
    return _response_of(step, url)


def make_client(
    *steps: Any,
    settings: XSettings | None = None,
    now: dt.datetime = NOW,
) -> tuple[XClient, ScriptedAdapter, list[float]]:
    settings = settings or XSettings()
    waits: list[float] = []
    http, adapter = scripted_session(*steps)
    session = create_session(settings, sleep=waits.append, http=http, wall_clock=lambda: WALL)
    return XClient(settings, ACCOUNT, session=session, clock=lambda: now), adapter, waits


def query(request: requests.PreparedRequest) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url or "").query)


def assert_no_token_sent(adapter: ScriptedAdapter) -> None:
    assert_token_only_in_header(adapter, TOKEN)


# --------------------------------------------------------------------------- listing


def test_timeline_posts_formats_references_hashtags_and_pages() -> None:
    client, adapter, _ = make_client(
        reply("timeline_page1.json"), reply("timeline_page2_last.json")
    )
    posts = list(client.list_posts(DAY))
    by_id = {p.item.external_content_id: p for p in posts}
    # P7 is a retweet (not the account's content); P9 was posted at the next midnight.
    assert list(by_id) == [P1, P2, P3, P4, P5, P6, P8, P10]
    assert {i: by_id[i].item.format for i in by_id} == {
        P1: ContentFormat.POST,
        P2: ContentFormat.CAROUSEL,
        P3: ContentFormat.VIDEO,
        P4: ContentFormat.VIDEO,  # animated GIF
        P5: ContentFormat.LINK,
        P6: ContentFormat.TEXT,  # its only link points at the quoted X post
        P8: ContentFormat.TEXT,
        P10: ContentFormat.POST,  # media object missing from includes: key prefix 3 = photo
    }
    assert by_id[P3].reference_type is ReferenceType.QUOTED
    assert by_id[P4].reference_type is ReferenceType.REPLIED_TO
    assert by_id[P4].referenced_id == "2123733088466214914"
    assert by_id[P1].reference_type is None and by_id[P1].referenced_id is None
    assert [by_id[i].item.reference_type for i in (P1, P3, P4, P6)] == [
        None,
        "quote",
        "reply",
        "quote",
    ]
    first = by_id[P1].item
    assert first.published_at == dt.datetime(2026, 11, 20, 21, 40, 5, tzinfo=dt.UTC)
    assert first.hashtags == ("launch", "summer")  # #Launch and #launch are one tag
    assert first.permalink == f"https://x.com/acme_store/status/{P1}"
    assert by_id[P4].item.hashtags == ("café",)
    assert by_id[P5].item.hashtags == ("sustainability",)  # X does not tag "#2026"
    long_post = by_id[P8].item
    assert long_post.caption is not None and len(long_post.caption) > 280  # note_tweet text
    assert long_post.caption.endswith("#LongRead #Launch")
    assert long_post.hashtags == ("longread", "launch")  # only in the note's entities
    assert by_id[P10].item.published_at == dt.datetime(2026, 11, 20, tzinfo=dt.UTC)

    assert client.api_calls == 2  # no next_token on page 2: the adapter would fail on a 3rd
    first_request, second_request = adapter.requests
    assert urlsplit(first_request.url or "").path == f"/2/users/{USER}/tweets"
    assert query(first_request) == {
        "start_time": ["2026-11-20T00:00:00Z"],
        "end_time": ["2026-11-21T00:00:00Z"],
        "max_results": ["100"],
        "exclude": ["retweets"],
        "tweet.fields": ["attachments,author_id,created_at,entities,note_tweet,referenced_tweets"],
        "expansions": ["attachments.media_keys,author_id"],
        "media.fields": ["type"],
        "user.fields": ["username"],
    }
    assert query(second_request)["pagination_token"] == [
        "7140dibdnow9c7btw423x7ekmfi7a9rnl1ua1wdnzqb3q"
    ]
    assert_no_token_sent(adapter)


def test_list_content_yields_the_items() -> None:
    client, _, _ = make_client(reply("timeline_page1.json"), reply("timeline_page2_last.json"))
    items = list(client.list_content(DAY))
    assert [i.external_content_id for i in items] == [P1, P2, P3, P4, P5, P6, P8, P10]


def test_a_day_without_posts_is_one_call_and_nothing() -> None:
    client, _, _ = make_client(reply("timeline_empty.json"))
    assert list(client.list_content(DAY)) == []
    assert client.api_calls == 1


def test_unknown_user_stops_the_integration() -> None:
    client, _, _ = make_client(reply("timeline_user_not_found.json"))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert raised.value.code == "resource-not-found"
    assert USER in raised.value.message


def _endless(request: requests.PreparedRequest) -> Reply:
    n = int(query(request).get("pagination_token", ["0"])[0]) + 1
    return Reply(200, {"meta": {"result_count": 0, "next_token": str(n)}})


def test_pagination_cap_raises_instead_of_looping_forever() -> None:
    client, adapter, _ = make_client(*[_endless] * 4, settings=XSettings(max_pages=3))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE
    assert len(adapter.requests) == 3


def test_a_repeated_next_token_is_an_invalid_response() -> None:
    page = Reply(200, {"meta": {"result_count": 0, "next_token": "same"}})
    client, adapter, _ = make_client(page, page, page)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE
    assert len(adapter.requests) == 2


@pytest.mark.parametrize(
    ("tweet", "media", "expected"),
    [
        ({"attachments": {"media_keys": ["3_1", "3_2"]}}, {}, "CAROUSEL"),
        ({"attachments": {"media_keys": ["3_1", "7_2"]}}, {}, "CAROUSEL"),  # mixed media
        ({"attachments": {"media_keys": ["9_1"]}}, {"9_1": {"type": "video"}}, "VIDEO"),
        ({"attachments": {"media_keys": ["16_1"]}}, {}, "VIDEO"),
        ({"attachments": {"media_keys": ["13_1"]}}, {}, "VIDEO"),
        ({"attachments": {"media_keys": ["3_1"]}}, {"3_1": {"type": "photo"}}, "POST"),
        ({"attachments": {"media_keys": ["99_1"]}}, {}, "POST"),  # unknown kind of media
        ({"entities": {"urls": [{"expanded_url": "https://example.com/a"}]}}, {}, "LINK"),
        ({"entities": {"urls": [{"expanded_url": "https://x.com/a/status/1"}]}}, {}, "TEXT"),
        ({"entities": {"urls": [{"url": "https://t.co/x", "media_key": "3_1"}]}}, {}, "TEXT"),
        (
            {
                "note_tweet": {
                    "text": "t",
                    "entities": {"urls": [{"expanded_url": "https://e.org"}]},
                }
            },
            {},
            "LINK",
        ),
        ({"text": "just words"}, {}, "TEXT"),
        ({"attachments": {"poll_ids": ["1"]}}, {}, "TEXT"),
    ],
)
def test_detect_format_table(tweet: dict[str, Any], media: dict[str, Any], expected: str) -> None:
    assert detect_format(tweet, media) is ContentFormat(expected)


@pytest.mark.parametrize(
    "tweet",
    [
        {"text": "no id", "created_at": "2026-11-20T10:00:00.000Z"},
        {"id": "1", "text": "bad time", "created_at": "yesterday"},
        {"id": "1", "text": "naive time", "created_at": "2026-11-20T10:00:00"},
        {"id": "1", "text": "no time"},
        {"id": 1, "created_at": "2026-11-20T10:00:00.000Z"},
        "not an object",
    ],
)
def test_malformed_posts_are_invalid_responses(tweet: Any) -> None:
    with pytest.raises(PlatformError) as raised:
        parse_tweet(tweet)
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE


def test_reference_priority_and_fallbacks() -> None:
    tweet = {
        "id": "5",
        "text": "replying and quoting #Tag",
        "created_at": "2026-11-20T10:00:00.000Z",
        "referenced_tweets": [{"type": "quoted", "id": "1"}, {"type": "replied_to", "id": "2"}],
    }
    post = parse_tweet(tweet)
    assert (post.reference_type, post.referenced_id) == (ReferenceType.REPLIED_TO, "2")
    assert post.item.permalink == "https://x.com/i/status/5"  # author unknown
    assert post.item.hashtags == ("tag",)  # no entities in the reply: taken from the text
    assert parse_tweet({**tweet, "entities": {}}).item.hashtags == ()  # X's entities win


def test_snowflake_time_of_a_recorded_post() -> None:
    assert snowflake_time(P1) == dt.datetime(2026, 11, 20, 21, 40, 5, tzinfo=dt.UTC)
    assert snowflake_time("abc") is None
    pre_snowflake = snowflake_time("20")  # 2006 ids decode to the snowflake epoch: old
    assert pre_snowflake is not None and pre_snowflake.year == 2010


# --------------------------------------------------------------------------- metrics


def test_lookup_maps_metrics_and_keeps_what_came_back() -> None:
    client, adapter, _ = make_client(reply("lookup_mixed.json"))
    ids = [P1, P3, DELETED, P5, PROTECTED, P4]
    batch = client.fetch_content_metrics(ids, DAY)
    assert client.api_calls == 1
    params = query(adapter.requests[0])
    assert params == {
        "ids": [",".join(ids)],
        "tweet.fields": ["attachments,public_metrics,non_public_metrics,organic_metrics"],
        "expansions": ["attachments.media_keys"],
        "media.fields": ["type,public_metrics"],
    }
    by_id = {m.external_content_id: m for m in batch.metrics}
    assert [m.external_content_id for m in batch.metrics] == [P1, P3, P5, P4]  # asked order
    photo = by_id[P1]
    assert photo.value_kind is ValueKind.LIFETIME_SNAPSHOT
    assert (photo.impressions, photo.views, photo.likes, photo.reactions) == (9876, 9876, 148, 148)
    assert (photo.comments, photo.shares, photo.saves) == (0, 15, 0)  # said 0 -> 0
    assert photo.clicks == 0  # profile clicks 0, no link on the post (X omits link clicks)
    assert photo.video_views is None and photo.reach is None
    video = by_id[P3]
    assert (video.video_views, video.clicks, video.shares) == (30125, 210, 45)
    link = by_id[P5]
    assert link.clicks == 87 + 6
    gif = by_id[P4]  # no impression_count, no private metrics, no view_count reported
    assert (gif.impressions, gif.views, gif.clicks, gif.video_views) == (None, None, None, None)
    assert (gif.likes, gif.comments, gif.shares, gif.saves) == (5, 2, 0, 0)
    assert [(s.external_content_id, s.code) for s in batch.skipped] == [
        (DELETED, "resource-not-found"),
        (PROTECTED, "not-authorized-for-resource"),
    ]
    assert "Could not find tweet" in batch.skipped[0].message
    assert_no_token_sent(adapter)


def test_parse_metrics_null_versus_zero() -> None:
    empty = parse_tweet_metrics({"id": "1"})
    assert empty.null_count() == 10
    zeros = parse_tweet_metrics(
        {
            "id": "1",
            "public_metrics": dict.fromkeys(
                ("retweet_count", "reply_count", "like_count", "quote_count", "bookmark_count"), 0
            ),
            "non_public_metrics": {"url_link_clicks": 0},
        }
    )
    assert (zeros.likes, zeros.comments, zeros.shares, zeros.saves, zeros.clicks) == (0, 0, 0, 0, 0)
    assert zeros.impressions is None
    half = parse_tweet_metrics({"id": "1", "public_metrics": {"retweet_count": 3}})
    assert half.shares is None  # quote_count not said: no half-sum
    organic = parse_tweet_metrics({"id": "1", "organic_metrics": {"impression_count": 7}})
    assert organic.impressions == 7 and organic.clicks is None


def test_refused_private_fields_fall_back_to_public_metrics_and_are_not_asked_again() -> None:
    client, adapter, _ = make_client(
        reply("lookup_fields_refused.json"),
        reply("lookup_public_only.json"),
        reply("lookup_public_only.json"),
    )
    batch = client.fetch_content_metrics([OLD_A, OLD_B], DAY)
    assert client.api_calls == 2
    assert batch.skipped == ()
    by_id = {m.external_content_id: m for m in batch.metrics}
    assert by_id[OLD_A].impressions == 3100 and by_id[OLD_A].clicks is None  # NULL, never 0
    assert by_id[OLD_B].likes == 0 and by_id[OLD_B].clicks is None
    first, second = (query(r)["tweet.fields"] for r in adapter.requests)
    assert first == ["attachments,public_metrics,non_public_metrics,organic_metrics"]
    assert second == ["attachments,public_metrics"]
    # Every post of the call was refused: the token is app-only, so do not ask again.
    client.fetch_content_metrics([OLD_A, OLD_B], DAY)
    assert query(adapter.requests[2])["tweet.fields"] == ["attachments,public_metrics"]


def test_a_field_refused_on_a_public_only_call_is_skipped_not_refetched() -> None:
    client, _, _ = make_client(
        reply("lookup_fields_refused.json"), reply("lookup_fields_refused.json")
    )
    batch = client.fetch_content_metrics([OLD_A, OLD_B], DAY)
    assert batch.metrics == () and client.api_calls == 2  # no third call, no loop
    assert {s.code for s in batch.skipped} == {"not-authorized-for-field"}


def test_unsupported_authentication_403_falls_back_to_public_metrics() -> None:
    client, adapter, _ = make_client(
        reply("error_403_unsupported_auth.json"), reply("lookup_public_only.json")
    )
    batch = client.fetch_content_metrics([OLD_A, OLD_B], DAY)
    assert len(batch.metrics) == 2 and client.api_calls == 2
    assert query(adapter.requests[1])["tweet.fields"] == ["attachments,public_metrics"]


def test_other_403s_are_credential_errors_not_a_fallback() -> None:
    # client-forbidden while asking for private fields: the app itself lacks access.
    client, _, _ = make_client(reply("error_403_client_forbidden.json"))
    with pytest.raises(PlatformError) as raised:
        client.fetch_content_metrics([P1], DAY)
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert raised.value.code == "client-forbidden" and client.api_calls == 1
    # unsupported-authentication without private fields: nothing left to drop.
    public = XSettings(private_metrics=())
    client, adapter, _ = make_client(reply("error_403_unsupported_auth.json"), settings=public)
    with pytest.raises(PlatformError) as raised:
        client.fetch_content_metrics([P1], DAY)
    assert raised.value.code == "unsupported-authentication" and client.api_calls == 1
    assert query(adapter.requests[0])["tweet.fields"] == ["attachments,public_metrics"]


def _lookup_echo(request: requests.PreparedRequest) -> Reply:
    ids = query(request)["ids"][0].split(",")
    public = {"like_count": 1, "retweet_count": 0, "quote_count": 0, "reply_count": 0}
    return Reply(200, {"data": [{"id": i, "text": "t", "public_metrics": public} for i in ids]})


def _snowflake(moment: dt.datetime, seq: int) -> str:
    return str(((int(moment.timestamp() * 1000) - 1288834974657) << 22) | seq)


def test_private_fields_only_for_posts_younger_than_30_days_and_100_ids_per_call() -> None:
    young = [_snowflake(NOW - dt.timedelta(days=2), i) for i in range(150)]
    old = [_snowflake(NOW - dt.timedelta(days=31), i) for i in range(30)]
    client, adapter, _ = make_client(*[_lookup_echo] * 3)
    batch = client.fetch_content_metrics([*old, *young, young[0]], DAY)
    assert len(batch.metrics) == 180 and batch.skipped == ()
    assert [m.external_content_id for m in batch.metrics] == [*old, *young]
    calls = [
        (len(query(r)["ids"][0].split(",")), query(r)["tweet.fields"][0]) for r in adapter.requests
    ]
    assert calls == [
        (100, "attachments,public_metrics,non_public_metrics,organic_metrics"),
        (50, "attachments,public_metrics,non_public_metrics,organic_metrics"),
        (30, "attachments,public_metrics"),
    ]


def test_posts_at_the_edge_of_the_window_are_asked_without_private_fields() -> None:
    edge = _snowflake(NOW - dt.timedelta(days=30) + dt.timedelta(minutes=30), 1)
    client, adapter, _ = make_client(_lookup_echo)
    client.fetch_content_metrics([edge], DAY)
    assert query(adapter.requests[0])["tweet.fields"] == ["attachments,public_metrics"]


def test_private_metrics_can_be_switched_off() -> None:
    client, adapter, _ = make_client(_lookup_echo, settings=XSettings(private_metrics=()))
    client.fetch_content_metrics([P1], DAY)
    assert query(adapter.requests[0])["tweet.fields"] == ["attachments,public_metrics"]


def test_invalid_and_unanswered_ids_are_skipped() -> None:
    client, adapter, _ = make_client(Reply(200, {"data": []}))
    batch = client.fetch_content_metrics(["not-an-id", P1, "1" * 20], DAY)
    assert batch.metrics == ()
    assert [(s.external_content_id, s.code) for s in batch.skipped] == [
        ("not-an-id", "invalid-id"),
        (P1, "missing-from-reply"),
        ("1" * 20, "invalid-id"),
    ]
    assert query(adapter.requests[0])["ids"] == [P1]


def test_no_ids_no_call() -> None:
    client, _, _ = make_client()
    assert client.fetch_content_metrics([], DAY).metrics == ()
    assert client.api_calls == 0


def test_parse_partial_errors() -> None:
    errors = parse_partial_errors(load("lookup_mixed.json")["body"])
    assert [(e.problem, e.resource_id, e.resource_type) for e in errors] == [
        ("resource-not-found", DELETED, "tweet"),
        ("not-authorized-for-resource", PROTECTED, "tweet"),  # api.x.com host
    ]
    refused = parse_partial_errors(load("lookup_fields_refused.json")["body"])
    assert {e.field for e in refused} >= {"non_public_metrics.url_link_clicks"}
    with pytest.raises(PlatformError):
        parse_partial_errors({"errors": "boom"})


# --------------------------------------------------------------------------- account


def test_account_metrics_are_the_follower_total_only() -> None:
    client, adapter, _ = make_client(reply("user_public_metrics.json"))
    assert client.fetch_account_metrics(DAY, include_snapshot=False) == AccountMetrics()
    assert client.api_calls == 0  # nothing per day on X: no call at all
    metrics = client.fetch_account_metrics(DAY, include_snapshot=True)
    assert metrics.followers_total == 48213
    assert metrics.null_count() == 6
    assert urlsplit(adapter.requests[0].url or "").path == f"/2/users/{USER}"
    assert query(adapter.requests[0]) == {"user.fields": ["public_metrics"]}


def test_account_metrics_of_an_unknown_user() -> None:
    client, _, _ = make_client(reply("user_not_found.json"))
    with pytest.raises(PlatformError) as raised:
        client.fetch_account_metrics(DAY, include_snapshot=True)
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL


# --------------------------------------------------------------------------- errors


MONTH_END = (dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp()) - WALL
DAY_END = (dt.datetime(2026, 11, 22, tzinfo=dt.UTC).timestamp()) - WALL


@pytest.mark.parametrize(
    ("name", "error_class", "code", "retry_after"),
    [
        ("error_401.json", ErrorClass.PERMANENT_CREDENTIAL, "http_401", None),
        (
            "error_403_client_forbidden.json",
            ErrorClass.PERMANENT_CREDENTIAL,
            "client-forbidden",
            None,
        ),
        (
            "error_403_unsupported_auth.json",
            ErrorClass.PERMANENT_CREDENTIAL,
            "unsupported-authentication",
            None,
        ),
        ("error_403_453_v11.json", CONFIG_ERROR, "453", None),
        ("error_404_34.json", CONFIG_ERROR, "34", None),
        ("error_400_invalid_request.json", ErrorClass.INVALID_RESPONSE, "invalid-request", None),
        ("error_429_rate_limit.json", ErrorClass.TRANSIENT, "http_429", 31.0),
        ("error_429_code88.json", ErrorClass.TRANSIENT, "88", 31.0),
        ("error_429_usage_cap.json", ErrorClass.TRANSIENT, "usage-capped", MONTH_END),
        ("error_429_usage_cap_daily.json", ErrorClass.TRANSIENT, "usage-capped", DAY_END),
        ("error_503.json", ErrorClass.TRANSIENT, "http_503", None),
        ("error_502_html.json", ErrorClass.TRANSIENT, "http_502", None),
        ("ok_200_html.json", ErrorClass.INVALID_RESPONSE, "http_200", None),
    ],
)
def test_classify_recorded_errors(
    name: str, error_class: ErrorClass, code: str, retry_after: float | None
) -> None:
    error = classify_response(response_of(reply(name)), now=WALL)
    assert error is not None
    assert (error.error_class, error.code, error.retry_after) == (error_class, code, retry_after)
    assert error.http_status == load(name)["status"]


def test_config_errors_name_the_setting_to_change() -> None:
    url = f"{BASE}/1.1/users/{USER}/tweets?max_results=100"
    error = classify_response(response_of(reply("error_403_453_v11.json"), url), now=WALL)
    assert error is not None
    assert "ANALYTICS_X_API_VERSION" in error.message
    assert "/1.1/users/" in error.message and "max_results=100" not in error.message


def test_a_usable_reply_and_a_not_found_404_problem() -> None:
    assert classify_response(response_of(reply("lookup_mixed.json")), now=WALL) is None
    gone = Reply(
        404, {"title": "Not Found Error", "type": "https://api.x.com/2/problems/resource-not-found"}
    )
    error = classify_response(response_of(gone), now=WALL)
    assert error is not None and error.error_class is ErrorClass.PERMANENT_OBJECT


def test_rate_limit_waits_until_the_reset_then_succeeds() -> None:
    client, _, waits = make_client(reply("error_429_rate_limit.json"), reply("timeline_empty.json"))
    assert list(client.list_content(DAY)) == []
    assert waits == [31.0]  # reset - now + 1 s, not a jittered backoff
    assert client.api_calls == 2


def test_a_rate_limit_longer_than_max_wait_raises_at_once() -> None:
    settings = XSettings(retry=RetryConfig(max_wait_s=10))
    client, _, waits = make_client(reply("error_429_rate_limit.json"), settings=settings)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert raised.value.retry_after == 31.0 and waits == []


def test_a_usage_cap_stops_the_stream_without_sleeping() -> None:
    client, _, waits = make_client(reply("error_429_usage_cap.json"))
    with pytest.raises(PlatformError) as raised:
        client.fetch_content_metrics([P1], DAY)
    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert raised.value.code == "usage-capped"
    assert raised.value.retry_after == MONTH_END
    assert waits == [] and client.api_calls == 1


@pytest.mark.parametrize(
    "name", ["error_401.json", "error_403_client_forbidden.json", "error_400_invalid_request.json"]
)
def test_permanent_errors_are_sent_once(name: str) -> None:
    client, _, waits = make_client(reply(name))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is not ErrorClass.TRANSIENT
    assert client.api_calls == 1 and waits == []


def test_server_errors_are_retried_with_backoff() -> None:
    client, _, waits = make_client(
        reply("error_503.json"), reply("error_502_html.json"), reply("timeline_empty.json")
    )
    assert list(client.list_content(DAY)) == []
    assert client.api_calls == 3 and len(waits) == 2


def test_remaining_zero_pauses_the_next_request_until_the_reset() -> None:
    first = reply("timeline_page1.json")
    first.headers = {
        **first.headers,
        "x-rate-limit-remaining": "0",
        "x-rate-limit-reset": "1795219220",
    }
    client, _, waits = make_client(first, reply("timeline_page2_last.json"))
    assert len(list(client.list_content(DAY))) == 8
    assert waits == [21.0]


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 0.0),
        ({"x-rate-limit-remaining": "12", "x-rate-limit-reset": str(int(WALL) + 60)}, 0.0),
        ({"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(WALL) + 60)}, 61.0),
        ({"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(int(WALL) - 60)}, 1.0),
        ({"x-rate-limit-remaining": "0"}, 0.0),
        ({"x-rate-limit-remaining": "0", "x-rate-limit-reset": "soon"}, 0.0),
        ({"x-rate-limit-remaining": "lots", "x-rate-limit-reset": str(int(WALL) + 60)}, 0.0),
    ],
)
def test_rate_limit_pause(headers: dict[str, str], expected: float) -> None:
    assert rate_limit_pause(headers, WALL) == expected


def test_usage_cap_reset_periods() -> None:
    now = dt.datetime(2026, 12, 31, 23, 0, tzinfo=dt.UTC)
    assert usage_cap_reset("Monthly", now) == 3600.0  # to 2027-01-01
    assert usage_cap_reset("Daily", now) == 3600.0
    assert usage_cap_reset(None, dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)) == 12 * 3600.0


def test_token_echoed_by_the_platform_is_redacted() -> None:
    echo = Reply(400, {"title": "Invalid Request", "detail": f"bad header Bearer {TOKEN}"})
    client, _, _ = make_client(echo)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert TOKEN not in str(raised.value) and TOKEN not in repr(raised.value.args)


# --------------------------------------------------------------------------- settings


def test_settings_defaults_and_environment() -> None:
    default = settings_from_env("x", {})
    assert default == XSettings()
    assert default.api_root == "https://api.x.com/2"
    assert default.private_metrics == ("non_public_metrics", "organic_metrics")
    custom = settings_from_env(
        "x",
        {
            "ANALYTICS_X_BASE_URL": "http://127.0.0.1:9000/",
            "ANALYTICS_X_API_VERSION": "2",
            "ANALYTICS_X_PRIVATE_METRICS": "non_public_metrics",
            "ANALYTICS_HTTP_MAX_ATTEMPTS": "2",
        },
    )
    assert custom.api_root == "http://127.0.0.1:9000/2"
    assert custom.private_metrics == ("non_public_metrics",)
    assert custom.retry.max_attempts == 2
    assert settings_from_env("x", {"ANALYTICS_X_PRIVATE_METRICS": "none"}).private_metrics == ()


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ANALYTICS_X_API_VERSION": "v2"}, "ANALYTICS_X_API_VERSION"),
        ({"ANALYTICS_X_BASE_URL": "api.x.com"}, "ANALYTICS_X_BASE_URL"),
        ({"ANALYTICS_X_PRIVATE_METRICS": "promoted_metrics"}, "ANALYTICS_X_PRIVATE_METRICS"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        settings_from_env("x", env)


def test_client_implements_the_platform_interface() -> None:
    client, _, _ = make_client()
    assert isinstance(client, PlatformClient)
    assert client.platform == "x" and client.content_metrics_are_lifetime is True
    factory: Callable[..., XClient] = XClient
    assert factory(XSettings(), ACCOUNT).api_calls == 0  # the default session needs no network
