"""Instagram Graph client: parsing and classification against recorded payloads, listing end
conditions, per-media-type batched insights, NULL versus 0, and account metrics."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from analytics_pipeline.platforms.base import Account, PlatformError, Secret
from analytics_pipeline.platforms.facebook import FacebookSettings
from analytics_pipeline.platforms.graph import InvalidMetricError, NotEnoughViewersError
from analytics_pipeline.platforms.http import RetryConfig
from analytics_pipeline.platforms.instagram import (
    MEDIA_FIELDS,
    InstagramClient,
    InstagramSettings,
    classify_response,
    create_session,
    media_format,
    parse_account_insights,
    parse_media,
    parse_media_insights,
)
from analytics_pipeline.records import ContentFormat, ContentMetrics, ErrorClass, ValueKind
from analytics_pipeline.settings import SettingsError
from analytics_pipeline_tests.fakes import (
    Payloads,
    Reply,
    ScriptedAdapter,
    scripted_session,
)
from analytics_pipeline_tests.fakes import assert_token_only_in_header as _token_only_in_header
from analytics_pipeline_tests.fakes import graph_batch_items as batch_items
from analytics_pipeline_tests.fakes import ok_item as ok
from analytics_pipeline_tests.helpers import settings_from_env

PAYLOADS = Payloads("instagram")
load = PAYLOADS.load
recorded = PAYLOADS.reply
IG = "17841400000000001"
TOKEN = "IGQVJtokenSECRET0123456789"
DAY = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 20, 23, 0, tzinfo=dt.UTC)
BASE = "https://graph.facebook.com"
ACCOUNT = Account("org-1", "int-ig", "instagram", IG, Secret(TOKEN))


def mid(n: int) -> str:
    return f"179{n:014d}"


def make_client(
    *steps: Any,
    settings: InstagramSettings | None = None,
    now: dt.datetime = NOW,
) -> tuple[InstagramClient, ScriptedAdapter, list[float]]:
    settings = settings or InstagramSettings()
    waits: list[float] = []
    http, adapter = scripted_session(*steps)
    session = create_session(settings, sleep=waits.append, http=http)
    return InstagramClient(settings, ACCOUNT, session=session, clock=lambda: now), adapter, waits


def assert_token_only_in_header(adapter: ScriptedAdapter) -> None:
    _token_only_in_header(adapter, TOKEN)


def item_id(item: dict[str, str]) -> str:
    return item["relative_url"].split("?", 1)[0].split("/", 1)[0]


def item_metrics(item: dict[str, str]) -> list[str]:
    query = parse_qs(urlsplit(item["relative_url"]).query)
    return query["metric"][0].split(",") if "metric" in query else []


def insights_body(pairs: dict[str, int]) -> dict[str, Any]:
    return {
        "data": [
            {"name": name, "period": "lifetime", "values": [{"value": value}]}
            for name, value in pairs.items()
        ]
    }


def fake_batch(answer: Callable[[dict[str, str]], Any]) -> Callable[..., Reply]:
    def respond(request: requests.PreparedRequest) -> Reply:
        assert request.method == "POST" and urlsplit(request.url or "").path == "/v25.0/"
        return Reply(200, [answer(item) for item in batch_items(request)])

    return respond


def listing(media: list[dict[str, Any]], next_url: str | None = None) -> Reply:
    body: dict[str, Any] = {"data": media}
    if next_url:
        body["paging"] = {"cursors": {"after": "x"}, "next": next_url}
    return Reply(200, body)


def media(n: int, timestamp: str, product: str = "FEED", kind: str = "IMAGE") -> dict[str, Any]:
    return {"id": mid(n), "media_type": kind, "media_product_type": product, "timestamp": timestamp}


# --------------------------------------------------------------------------- media


def test_media_is_parsed_with_format_hashtags_and_utc_time() -> None:
    raw = load("media_page1.json")["body"]["data"] + load("stories.json")["body"]["data"]
    items = {item.external_content_id: item for item in map(parse_media, raw)}
    assert {n: items[mid(n)].format for n in (1, 2, 3, 4, 8, 9)} == {
        1: ContentFormat.REEL,
        2: ContentFormat.CAROUSEL,
        3: ContentFormat.POST,
        4: ContentFormat.VIDEO,
        8: ContentFormat.STORY,
        9: ContentFormat.STORY,
    }
    reel = items[mid(1)]
    assert reel.published_at == dt.datetime(2026, 11, 20, 21, 40, 5, tzinfo=dt.UTC)
    assert reel.hashtags == ("bts", "reels")
    assert reel.permalink == "https://www.instagram.com/reel/C1a2b3c4d5e/"
    assert items[mid(2)].hashtags == ("winter", "mode", "café")
    assert items[mid(3)].caption is None and items[mid(3)].hashtags == ()
    assert items[mid(4)].hashtags == ("grand_opening",)  # "#1" is a number, not a tag


@pytest.mark.parametrize(
    ("product", "kind", "expected"),
    [
        ("REELS", "VIDEO", ContentFormat.REEL),
        ("STORY", "IMAGE", ContentFormat.STORY),
        ("STORY", "VIDEO", ContentFormat.STORY),
        ("FEED", "CAROUSEL_ALBUM", ContentFormat.CAROUSEL),
        ("FEED", "VIDEO", ContentFormat.VIDEO),
        ("FEED", "IMAGE", ContentFormat.POST),
        ("AD", "IMAGE", ContentFormat.POST),
        (None, "CAROUSEL_ALBUM", ContentFormat.CAROUSEL),
        (None, None, ContentFormat.POST),
    ],
)
def test_media_format_table(product: str | None, kind: str | None, expected: str) -> None:
    assert media_format({"media_product_type": product, "media_type": kind}) == expected


@pytest.mark.parametrize(
    "raw",
    [None, {}, {"id": ""}, {"id": mid(1)}, {"id": mid(1), "timestamp": "yesterday"}],
)
def test_malformed_media_is_an_invalid_response(raw: Any) -> None:
    with pytest.raises(PlatformError) as raised:
        parse_media(raw)
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE


# --------------------------------------------------------------------------- listing


def test_list_content_pages_media_then_stories_and_keeps_the_day_only() -> None:
    client, adapter, _ = make_client(
        recorded("media_page1.json"), recorded("media_page2_last.json"), recorded("stories.json")
    )
    items = list(client.list_content(DAY))
    assert [i.external_content_id for i in items] == [mid(n) for n in (1, 2, 3, 4, 5, 8)]
    first, second, stories = adapter.requests
    assert urlsplit(first.url or "").path == f"/v25.0/{IG}/media"
    assert parse_qs(urlsplit(first.url or "").query) == {
        "fields": [MEDIA_FIELDS],
        "limit": ["100"],
    }
    # page 2 is `paging.next` without its access_token (the token travels in the header)
    assert "access_token" not in (second.url or "")
    assert parse_qs(urlsplit(second.url or "").query)["after"] == ["QVFIUjR2b1"]
    assert urlsplit(stories.url or "").path == f"/v25.0/{IG}/stories"
    assert_token_only_in_header(adapter)


def test_paging_stops_once_a_page_ends_before_the_day() -> None:
    page1 = listing(
        [media(1, "2026-11-21T10:00:00+0000"), media(2, "2026-11-20T12:00:00+0000")],
        f"{BASE}/v25.0/{IG}/media?access_token=x&after=a1",
    )
    page2 = listing(
        [media(3, "2026-11-20T01:00:00+0000"), media(4, "2026-11-19T12:00:00+0000")],
        f"{BASE}/v25.0/{IG}/media?access_token=x&after=a2",  # never followed
    )
    client, adapter, _ = make_client(page1, page2, listing([]))
    assert [i.external_content_id for i in client.list_content(DAY)] == [mid(2), mid(3)]
    assert len(adapter.requests) == 3  # media p1, media p2, stories
    assert urlsplit(adapter.requests[2].url or "").path.endswith("/stories")


def test_an_empty_media_page_ends_the_listing() -> None:
    client, adapter, _ = make_client(listing([]), listing([]))
    assert list(client.list_content(DAY)) == []
    assert len(adapter.requests) == 2


def test_media_pagination_cap_raises_instead_of_looping_forever() -> None:
    settings = InstagramSettings(max_pages=3)

    def endless(request: requests.PreparedRequest) -> Reply:
        return listing(
            [media(1, "2026-11-21T10:00:00+0000")],
            f"{BASE}/v25.0/{IG}/media?access_token=x&after=more",
        )

    client, adapter, _ = make_client(*[endless] * 3, settings=settings)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE
    assert "max_pages=3" in raised.value.message and len(adapter.requests) == 3


def test_next_pointing_to_another_host_is_not_followed() -> None:
    page = listing([media(1, "2026-11-20T10:00:00+0000")], "https://evil.example/steal?after=x")
    client, adapter, _ = make_client(page)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE
    assert len(adapter.requests) == 1


def test_a_reply_without_data_is_an_invalid_response() -> None:
    client, _, _ = make_client(Reply(200, {"paging": {}}))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE


# --------------------------------------------------------------------------- media insights


def _listed_client(*steps: Any, **kwargs: Any) -> tuple[InstagramClient, ScriptedAdapter]:
    """A client that has listed the recorded media and stories (so it knows their types)."""
    client, adapter, _ = make_client(
        recorded("media_page1.json"),
        recorded("media_page2_last.json"),
        recorded("stories.json"),
        *steps,
        **kwargs,
    )
    list(client.list_content(DAY))
    return client, adapter


def test_each_media_type_gets_its_own_metric_list_in_one_batch() -> None:
    settings = InstagramSettings()
    client, adapter = _listed_client(fake_batch(lambda item: ok(insights_body({"views": 1}))))
    ids = [mid(n) for n in (1, 2, 3, 4, 8)]
    batch = client.fetch_content_metrics(ids, DAY)
    assert [m.external_content_id for m in batch.metrics] == ids
    items = batch_items(adapter.requests[-1])
    assert [item_id(i) for i in items] == ids
    assert all(i["relative_url"].split("?")[0].endswith("/insights") for i in items)
    assert [item_metrics(i) for i in items] == [
        list(settings.reel_metrics),
        list(settings.feed_metrics),  # a carousel: the album, never its children
        list(settings.feed_metrics),
        list(settings.feed_metrics),  # a feed video
        list(settings.story_metrics),
    ]
    assert not any(
        m in {"impressions", "plays", "video_views"} for i in items for m in item_metrics(i)
    )
    assert client.api_calls == 4  # 3 listing pages + 1 batch
    assert_token_only_in_header(adapter)


def test_recorded_batch_null_versus_zero_and_per_item_errors() -> None:
    ids = [mid(n) for n in (1, 2, 8, 3, 9, 5, 4, 6)]
    client, adapter = _listed_client(
        recorded("batch_insights_mixed.json"),
        recorded("batch_insights_retry.json"),
        now=dt.datetime(2026, 11, 20, 20, 0, tzinfo=dt.UTC),  # story 9 (21:00 the day before) lives
    )
    batch = client.fetch_content_metrics(ids, DAY)
    by_id = {m.external_content_id: m for m in batch.metrics}
    reel = by_id[mid(1)]
    assert reel == ContentMetrics(
        mid(1),
        ValueKind.LIFETIME_SNAPSHOT,
        views=5120,
        reach=3010,
        likes=240,
        comments=12,
        shares=31,
        saves=18,
    )
    zeros = by_id[mid(2)]
    assert (zeros.likes, zeros.shares, zeros.saves) == (0, 0, 0)  # said zero: zero
    assert zeros.comments is None  # not in the reply: NULL
    story = by_id[mid(8)]
    assert (story.views, story.comments, story.shares, story.saves) == (320, 0, 2, None)
    assert by_id[mid(3)].null_count() == 10  # insights not ready: every column NULL
    assert by_id[mid(9)].null_count() == 10  # (#10) not enough viewers: no data, not an error
    assert [(s.external_content_id, s.code) for s in batch.skipped] == [
        (mid(5), "100/33"),
        (mid(4), "100/2108006"),
    ]
    assert by_id[mid(6)].views == 77  # the null item, asked again alone
    retry = batch_items(adapter.requests[-1])
    assert [item_id(i) for i in retry] == [mid(6)]
    assert all(m.reactions is None and m.clicks is None for m in batch.metrics)


def test_unknown_media_types_are_read_first_then_insights_batched() -> None:
    n = 120
    ids = [mid(100 + i) for i in range(n)]
    kinds = ["REELS", "FEED", "STORY"]

    def info(item: dict[str, str]) -> Any:
        index = int(item_id(item)) - int(mid(100))
        product = kinds[index % 3]
        stamp = "2026-11-20T20:00:00+0000"
        return ok({"media_type": "VIDEO", "media_product_type": product, "timestamp": stamp})

    def insights(item: dict[str, str]) -> Any:
        return ok(insights_body({m: 1 for m in item_metrics(item)}))

    lookups = math.ceil(n / 50)
    client, adapter, _ = make_client(*[fake_batch(info)] * lookups, *[fake_batch(insights)] * 3)
    batch = client.fetch_content_metrics(ids + ids[:3], DAY)  # repeats asked once
    assert [m.external_content_id for m in batch.metrics] == ids
    assert client.api_calls == lookups + 3 == 6
    first = batch_items(adapter.requests[0])
    assert first[0]["relative_url"] == f"{ids[0]}?fields=media_type,media_product_type,timestamp"
    assert [len(batch_items(r)) for r in adapter.requests] == [50, 50, 20, 50, 50, 20]
    stories = [m for i, m in enumerate(batch.metrics) if i % 3 == 2]
    assert all(s.likes is None and s.comments == 1 for s in stories)  # replies -> comments
    # A second call of the same client needs no type reads any more.
    client2_calls = client.api_calls
    with pytest.raises(AssertionError, match="unexpected extra request"):
        client.fetch_content_metrics(ids[:1], DAY)
    assert client.api_calls == client2_calls + 1  # straight to insights


def test_expired_stories_are_not_asked_and_gone_media_is_skipped() -> None:
    gone = {"code": 400, "body": json.dumps(load("error_100_33.json")["body"])}

    def info(item: dict[str, str]) -> Any:
        if item_id(item) == mid(3):
            return gone
        product = "STORY" if item_id(item) in (mid(1), mid(2)) else "FEED"
        stamp = (
            "2026-11-19T10:00:00+0000" if item_id(item) == mid(1) else "2026-11-20T10:00:00+0000"
        )
        return ok({"media_type": "IMAGE", "media_product_type": product, "timestamp": stamp})

    client, adapter, _ = make_client(
        fake_batch(info), fake_batch(lambda item: ok(insights_body({"views": 5})))
    )
    batch = client.fetch_content_metrics([mid(1), mid(2), mid(3), mid(4)], DAY)
    assert [m.external_content_id for m in batch.metrics] == [mid(2), mid(4)]
    assert [(s.external_content_id, s.code) for s in batch.skipped] == [(mid(3), "100/33")]
    assert [item_id(i) for i in batch_items(adapter.requests[1])] == [mid(2), mid(4)]


def test_no_content_ids_means_no_call() -> None:
    client, adapter, _ = make_client()
    assert client.fetch_content_metrics([], DAY).metrics == ()
    assert adapter.requests == []


def test_an_unsupported_story_metric_is_dropped_for_stories_only() -> None:
    settings = InstagramSettings(story_metrics=("views", "reach", "saved"))
    unsupported = load("batch_unsupported_metric.json")["body"][1]

    def graph(item: dict[str, str]) -> Any:
        if item_id(item) == mid(8) and "saved" in item_metrics(item):
            return unsupported
        return ok(insights_body({m: 3 for m in item_metrics(item)}))

    client, adapter = _listed_client(
        recorded("batch_unsupported_metric.json"),
        fake_batch(graph),  # the probe: one item per story metric
        fake_batch(graph),  # the story again, without `saved`
        fake_batch(graph),  # a later call
        settings=settings,
    )
    batch = client.fetch_content_metrics([mid(2), mid(8)], DAY)
    assert batch.rejected_metrics == ("saved (VIDEO/STORY)",)  # the carousel answered it
    assert [m.external_content_id for m in batch.metrics] == [mid(2), mid(8)]
    probe = batch_items(adapter.requests[4])
    assert [item_metrics(i) for i in probe] == [["views"], ["reach"], ["saved"]]
    assert [item_metrics(i) for i in batch_items(adapter.requests[5])] == [["views", "reach"]]
    client.fetch_content_metrics([mid(2), mid(8)], DAY)
    feed_item, story_item = batch_items(adapter.requests[6])
    assert "saved" in item_metrics(feed_item)  # still asked for feed posts
    assert item_metrics(story_item) == ["views", "reach"]


def test_item_credential_error_stops_at_once() -> None:
    expired = {"code": 400, "body": json.dumps(load("error_190_460.json")["body"])}
    client, adapter = _listed_client(Reply(200, [ok(insights_body({"views": 1})), expired]))
    with pytest.raises(PlatformError) as raised:
        client.fetch_content_metrics([mid(1), mid(2)], DAY)
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert raised.value.code == "190/460" and len(adapter.requests) == 4


def test_transient_items_are_retried_a_bounded_number_of_times() -> None:
    throttled = {"code": 400, "body": json.dumps(load("error_4.json")["body"])}
    client, adapter = _listed_client(
        Reply(200, [throttled]),
        Reply(200, [throttled]),
        settings=InstagramSettings(retry=RetryConfig(max_attempts=2)),
    )
    with pytest.raises(PlatformError) as raised:
        client.fetch_content_metrics([mid(1)], DAY)
    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert len(adapter.requests) == 5


def test_parse_media_insights_takes_the_first_configured_metric_for_a_column() -> None:
    body = insights_body({"replies": 4, "comments": 9, "navigation": 50, "impressions": 7})
    metrics = parse_media_insights(mid(1), body, ("replies", "comments"))
    assert (metrics.comments, metrics.impressions) == (4, 7)
    assert parse_media_insights(mid(1), {"data": []}).null_count() == 10
    garbage = parse_media_insights(mid(1), {"data": [{"name": "views", "values": "x"}]})
    assert garbage.views is None


# --------------------------------------------------------------------------- account metrics


def _account_reply(*bodies: dict[str, Any]) -> Reply:
    return Reply(200, [ok(body) for body in bodies])


def test_account_metrics_in_one_batch_call_with_pacific_days() -> None:
    client, adapter, _ = make_client(
        _account_reply(
            {"followers_count": 12001, "id": IG},
            load("account_series_nov.json")["body"],
            load("account_totals.json")["body"],
        )
    )
    metrics = client.fetch_account_metrics(DAY, include_snapshot=True)
    assert (metrics.followers_total, metrics.reach, metrics.new_followers) == (12001, 523, 0)
    assert (metrics.profile_views, metrics.website_clicks, metrics.views) == (57, 0, 4410)
    assert metrics.impressions is None and metrics.rejected_metrics == ()
    assert client.api_calls == 1
    snapshot, series, totals = (i["relative_url"] for i in batch_items(adapter.requests[0]))
    assert snapshot == f"{IG}?fields=followers_count"
    start = int(dt.datetime(2026, 11, 20, tzinfo=dt.UTC).timestamp())
    assert parse_qs(urlsplit(series).query) == {
        "metric": ["reach,follower_count"],
        "period": ["day"],
        "since": [str(start)],
        "until": [str(start + 2 * 86400)],
    }
    assert parse_qs(urlsplit(totals).query) == {
        "metric": ["profile_views,website_clicks,views"],
        "metric_type": ["total_value"],
        "period": ["day"],
        "since": [str(start)],
        "until": [str(start + 86400)],
    }
    assert_token_only_in_header(adapter)


def test_follower_count_is_not_asked_beyond_30_days_and_no_snapshot_when_not_wanted() -> None:
    old_day = DAY - dt.timedelta(days=45)
    client, adapter, _ = make_client(
        _account_reply({"data": []}, load("account_totals.json")["body"])
    )
    metrics = client.fetch_account_metrics(old_day, include_snapshot=False)
    assert metrics.new_followers is None and metrics.followers_total is None
    assert metrics.reach is None  # the series said nothing for that day
    series, _totals = (i["relative_url"] for i in batch_items(adapter.requests[0]))
    assert parse_qs(urlsplit(series).query)["metric"] == ["reach"]


@pytest.mark.parametrize(
    ("day", "expected"),
    [(dt.date(2026, 3, 8), 888), (dt.date(2026, 3, 7), 700), (dt.date(2026, 3, 9), None)],
)
def test_account_series_values_map_to_pacific_days_across_dst(
    day: dt.date, expected: int | None
) -> None:
    body = load("account_series_march.json")["body"]
    assert parse_account_insights(body, day).get("reach") == expected


def test_an_invalid_account_metric_is_dropped_and_the_rest_still_fetched() -> None:
    settings = InstagramSettings(account_metrics=("reach", "impressions", "views"))
    gone = {"code": 400, "body": json.dumps(load("error_100_no_longer_supported.json")["body"])}

    def graph(item: dict[str, str]) -> Any:
        if "impressions" in item_metrics(item):
            return gone
        if "metric_type=total_value" in item["relative_url"]:
            return ok(load("account_totals.json")["body"])
        return ok(load("account_series_nov.json")["body"])

    client, _, _ = make_client(*[fake_batch(graph)] * 3, settings=settings)
    metrics = client.fetch_account_metrics(DAY, include_snapshot=False)
    assert metrics.rejected_metrics == ("impressions",)
    assert (metrics.reach, metrics.views, metrics.impressions) == (523, 4410, None)
    assert client.api_calls == 3  # the failing batch, one probe, the rerun


def test_a_missing_account_fails_the_day() -> None:
    gone = {"code": 400, "body": json.dumps(load("error_100_33.json")["body"])}
    client, _, _ = make_client(Reply(200, [gone, gone]))
    with pytest.raises(PlatformError) as raised:
        client.fetch_account_metrics(DAY, include_snapshot=False)
    assert raised.value.error_class is ErrorClass.PERMANENT_OBJECT


# --------------------------------------------------------------------------- classification


@pytest.mark.parametrize(
    ("name", "error_class", "code"),
    [
        ("error_190_460.json", ErrorClass.PERMANENT_CREDENTIAL, "190/460"),
        ("error_10_permission.json", ErrorClass.PERMANENT_CREDENTIAL, "10"),
        ("error_10_not_enough_viewers.json", ErrorClass.PERMANENT_OBJECT, "10"),
        ("error_100_33.json", ErrorClass.PERMANENT_OBJECT, "100/33"),
        ("error_100_2108006.json", ErrorClass.PERMANENT_OBJECT, "100/2108006"),
        ("error_4.json", ErrorClass.TRANSIENT, "4/1504022"),
        ("error_80002.json", ErrorClass.TRANSIENT, "80002"),
        ("error_500_transient.json", ErrorClass.TRANSIENT, "2"),
        ("error_2635.json", ErrorClass.PERMANENT_CONFIG, "2635"),
        ("error_100_unsupported_metric.json", ErrorClass.INVALID_RESPONSE, "100"),
        ("error_100_metric_must_be_one_of.json", ErrorClass.INVALID_RESPONSE, "100"),
        ("error_100_no_longer_supported.json", ErrorClass.INVALID_RESPONSE, "100"),
        ("error_100_total_value_required.json", ErrorClass.INVALID_RESPONSE, "100"),
    ],
)
def test_recorded_errors_are_classified_by_code(name: str, error_class: str, code: str) -> None:
    recording = load(name)
    reply = recorded(name)
    response = reply.to_response(requests.Request("GET", f"{BASE}/v25.0/x").prepare())
    error = classify_response(response)
    assert error is not None
    assert (error.error_class, error.code, error.platform) == (error_class, code, "instagram")
    assert error.http_status == recording["status"]
    invalid_metric_names = {
        "error_100_unsupported_metric.json",
        "error_100_metric_must_be_one_of.json",
        "error_100_no_longer_supported.json",
    }
    assert isinstance(error, InvalidMetricError) == (name in invalid_metric_names)
    assert isinstance(error, NotEnoughViewersError) == (name == "error_10_not_enough_viewers.json")


def test_a_sunset_version_names_the_setting_to_change() -> None:
    client, adapter, waits = make_client(recorded("error_2635.json"))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.PERMANENT_CONFIG
    assert "ANALYTICS_INSTAGRAM_API_VERSION" in raised.value.message
    assert len(adapter.requests) == 1 and waits == []


def test_a_used_up_quota_raises_at_once_with_the_regain_time() -> None:
    client, adapter, waits = make_client(recorded("error_80002_quota.json"))
    with pytest.raises(PlatformError) as raised:
        client.fetch_account_metrics(DAY, include_snapshot=True)
    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert raised.value.retry_after == 6 * 3600
    assert len(adapter.requests) == 1 and waits == []


def test_a_short_throttle_is_waited_out_then_retried() -> None:
    client, adapter, waits = make_client(recorded("error_80002.json"), listing([]), listing([]))
    assert list(client.list_content(DAY)) == []
    assert waits == [180.0] and len(adapter.requests) == 3


def test_error_messages_never_carry_the_token() -> None:
    leaked = {"error": {"message": f"bad ?access_token={TOKEN} Bearer {TOKEN}", "code": 190}}
    client, _, _ = make_client(Reply(400, leaked))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert TOKEN not in str(raised.value) and TOKEN not in repr(raised.value.args)


# --------------------------------------------------------------------------- settings


def test_settings_from_env_and_defaults() -> None:
    defaults = settings_from_env("instagram", {})
    assert defaults == InstagramSettings()
    assert defaults.api_version == FacebookSettings().api_version
    assert defaults.base_url == "https://graph.facebook.com"
    assert "views" in defaults.feed_metrics and "impressions" not in defaults.feed_metrics
    env = {
        "ANALYTICS_INSTAGRAM_BASE_URL": "http://127.0.0.1:9/",
        "ANALYTICS_INSTAGRAM_API_VERSION": "v26.0",
        "ANALYTICS_INSTAGRAM_FEED_METRICS": "views, reach",
        "ANALYTICS_INSTAGRAM_REEL_METRICS": "views",
        "ANALYTICS_INSTAGRAM_STORY_METRICS": "views,replies",
        "ANALYTICS_INSTAGRAM_ACCOUNT_METRICS": "reach",
        "ANALYTICS_HTTP_MAX_ATTEMPTS": "2",
    }
    settings = settings_from_env("instagram", env)
    assert settings.base_url == "http://127.0.0.1:9" and settings.api_version == "v26.0"
    assert settings.feed_metrics == ("views", "reach") and settings.reel_metrics == ("views",)
    assert settings.story_metrics == ("views", "replies")
    assert settings.account_metrics == ("reach",) and settings.retry.max_attempts == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ANALYTICS_INSTAGRAM_API_VERSION", "25"),
        ("ANALYTICS_INSTAGRAM_BASE_URL", "graph.facebook.com"),
        ("ANALYTICS_INSTAGRAM_STORY_METRICS", " , "),
        ("ANALYTICS_INSTAGRAM_USAGE_MAX_PAUSE_S", "-1"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        settings_from_env("instagram", {name: value})


def test_settings_validation_and_client_flags() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        InstagramSettings(batch_size=51)
    with pytest.raises(ValueError, match="api_version"):
        InstagramSettings(api_version="latest")
    client = InstagramClient(InstagramSettings(), ACCOUNT)
    assert client.platform == "instagram" and client.api_calls == 0
    assert client.content_metrics_are_lifetime
