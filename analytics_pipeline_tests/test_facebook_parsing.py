"""Facebook Graph client: parsing and classification against recorded payloads, pagination,
batching, the invalid-metric path, usage headers, and the platform registry."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from analytics_pipeline.platforms import SUPPORTED_PLATFORMS, create_client, settings_type
from analytics_pipeline.platforms.base import Account, PlatformError, Secret
from analytics_pipeline.platforms.facebook import (
    POST_FIELDS,
    FacebookClient,
    FacebookSettings,
    InvalidMetricError,
    classify_graph_error,
    classify_response,
    create_session,
    detect_format,
    parse_post,
    parse_post_metrics,
    usage_pause,
)
from analytics_pipeline.platforms.http import ApiSession, RetryConfig
from analytics_pipeline.platforms.text import extract_hashtags
from analytics_pipeline.records import ContentFormat, ContentMetrics, ErrorClass, ValueKind
from analytics_pipeline.settings import SettingsError
from analytics_pipeline_tests.fakes import (
    Payloads,
    Reply,
    ScriptedAdapter,
    assert_token_only_in_header,
    scripted_session,
)
from analytics_pipeline_tests.fakes import graph_batch_items as _batch_items
from analytics_pipeline_tests.fakes import response_of as _response_of
from analytics_pipeline_tests.helpers import client_from_env

PAYLOADS = Payloads("facebook")
load = PAYLOADS.load
PAGE = "104589123456789"
TOKEN = "EAAGpageTOKENabcdef0123456789"
DAY = dt.date(2026, 11, 20)
BASE = "https://graph.facebook.com"


def post_id(n: int) -> str:
    return f"{PAGE}_{1000000000000000 + n}"


def response_of(reply: Reply, url: str = f"{BASE}/v25.0/x") -> requests.Response:
    return _response_of(reply, url)


def recorded_response(name: str, **overrides: Any) -> requests.Response:
    return response_of(PAYLOADS.reply(name, **overrides))


ACCOUNT = Account(
    organization_id="org-1",
    integration_id="int-1",
    platform="facebook",
    external_account_id=PAGE,
    token=Secret(TOKEN),
)


def make_client(
    *steps: Any, settings: FacebookSettings | None = None
) -> tuple[FacebookClient, ScriptedAdapter, list[float]]:
    settings = settings or FacebookSettings()
    waits: list[float] = []
    http, adapter = scripted_session(*steps)
    session = create_session(settings, sleep=waits.append, http=http)
    return FacebookClient(settings, ACCOUNT, session=session), adapter, waits


def assert_no_token_sent(adapter: ScriptedAdapter) -> None:
    assert_token_only_in_header(adapter, TOKEN)


# --------------------------------------------------------------------------- posts


def test_posts_are_parsed_with_format_hashtags_and_utc_time() -> None:
    posts = [parse_post(p) for p in load("posts_page1.json")["body"]["data"]]
    posts += [parse_post(p) for p in load("posts_page2_last.json")["body"]["data"]]
    by_id = {p.external_content_id: p for p in posts}
    formats = {n: by_id[post_id(n)].format for n in range(1, 8)}
    assert formats == {
        1: ContentFormat.REEL,  # /reel/ permalink, although the attachment says video
        2: ContentFormat.VIDEO,
        3: ContentFormat.CAROUSEL,
        4: ContentFormat.POST,
        5: ContentFormat.LINK,
        6: ContentFormat.TEXT,
        7: ContentFormat.LINK,  # shared_story with a link attachment
    }
    first = by_id[post_id(1)]
    assert first.published_at == dt.datetime(2026, 11, 20, 21, 40, 5, tzinfo=dt.UTC)
    assert first.hashtags == ("bts", "reels")
    assert first.permalink == "https://www.facebook.com/reel/1000000000000001/"
    assert by_id[post_id(2)].hashtags == ("interview",)  # "#1" is a number, not a tag
    assert by_id[post_id(3)].hashtags == ("winter", "mode", "café")  # not the URL's #Sale
    assert by_id[post_id(4)].hashtags == ("grand_opening",)
    assert by_id[post_id(5)].hashtags == ()
    assert by_id[post_id(7)].caption is None and by_id[post_id(7)].hashtags == ()


@pytest.mark.parametrize(
    ("post", "expected"),
    [
        ({"status_type": "added_video", "attachments": {"data": [{"type": "reel"}]}}, "REEL"),
        ({"permalink_url": "https://www.facebook.com/reel/1/"}, "REEL"),
        ({"attachments": {"data": [{"media_type": "video", "type": "video_inline"}]}}, "VIDEO"),
        ({"attachments": {"data": [{"media_type": "album"}]}}, "CAROUSEL"),
        (
            {"attachments": {"data": [{"type": "multi_share", "subattachments": {"data": [{}]}}]}},
            "CAROUSEL",
        ),
        ({"attachments": {"data": [{"media_type": "photo", "type": "photo"}]}}, "POST"),
        ({"attachments": {"data": [{"media_type": "link", "type": "share"}]}}, "LINK"),
        ({"status_type": "shared_story", "attachments": {"data": [{"url": "https://x"}]}}, "LINK"),
        ({"status_type": "mobile_status_update"}, "TEXT"),
        ({"attachments": {"data": []}}, "TEXT"),
        ({"status_type": "added_video"}, "VIDEO"),
        ({"attachments": {"data": [{"media_type": "event", "type": "event"}]}}, "POST"),
    ],
)
def test_detect_format_table(post: dict[str, Any], expected: str) -> None:
    assert detect_format(post) is ContentFormat(expected)


@pytest.mark.parametrize(
    "post",
    [
        {"created_time": "2026-11-20T14:03:11+0000"},
        {"id": "1", "created_time": "yesterday"},
        {"id": "1"},
        "not an object",
    ],
)
def test_malformed_posts_are_invalid_responses(post: Any) -> None:
    with pytest.raises(PlatformError) as raised:
        parse_post(post)
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE


def test_list_content_follows_next_until_it_is_absent() -> None:
    client, adapter, _ = make_client(
        PAYLOADS.reply("posts_page1.json"),
        PAYLOADS.reply("posts_page2_last.json"),  # cursors but no next: stop
    )
    items = list(client.list_content(DAY))
    assert [i.external_content_id for i in items] == [post_id(n) for n in range(1, 8)]
    assert client.api_calls == 2  # the adapter would fail on a third request
    first, second = (urlsplit(r.url or "") for r in adapter.requests)
    assert first.path == f"/v25.0/{PAGE}/posts"
    assert parse_qs(first.query) == {
        "fields": [POST_FIELDS],
        "since": ["1795132800"],
        "until": ["1795219200"],
        "limit": ["100"],
    }
    # The next page is the recorded `paging.next` minus its token, other params kept.
    assert parse_qs(second.query)["after"] == ["QVFIUnh5ejEyMzQ1"]
    assert "access_token" not in (adapter.requests[1].url or "")
    assert_no_token_sent(adapter)


def test_posts_outside_the_day_and_repeats_are_dropped() -> None:
    page = load("posts_page2_last.json")
    page["body"]["data"].append(page["body"]["data"][0])  # a repeat at a page boundary
    client, _, _ = make_client(Reply.from_recording(page))
    ids = [i.external_content_id for i in client.list_content(DAY)]
    assert ids == [post_id(5), post_id(6), post_id(7)]  # post 8 was published on the 19th


def _endless_page(request: requests.PreparedRequest) -> Reply:
    n = int(parse_qs(urlsplit(request.url or "").query).get("after", ["0"])[0]) + 1
    return Reply(200, {"data": [], "paging": {"next": f"{BASE}/v25.0/{PAGE}/posts?after={n}"}})


def test_pagination_cap_raises_instead_of_looping_forever() -> None:
    settings = FacebookSettings(max_pages=3)
    client, adapter, _ = make_client(*[_endless_page] * 4, settings=settings)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE
    assert "max_pages=3" in raised.value.message
    assert len(adapter.requests) == 3


def test_next_pointing_to_another_host_is_not_followed() -> None:
    page = load("posts_page1.json")
    page["body"]["paging"]["next"] = "https://evil.example.com/v25.0/1/posts?access_token=X"
    client, adapter, _ = make_client(Reply.from_recording(page))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE
    assert "evil.example.com" in raised.value.message and "access_token=X" not in str(raised.value)
    assert len(adapter.requests) == 1


def test_a_posts_reply_without_data_is_an_invalid_response() -> None:
    client, _, _ = make_client(Reply(200, {"paging": {}}))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE


# --------------------------------------------------------------------------- metrics parsing


def _batch_bodies(name: str) -> list[Any]:
    return [None if entry is None else json.loads(entry["body"]) for entry in load(name)["body"]]


def test_metrics_null_versus_zero() -> None:
    bodies = _batch_bodies("batch_mixed.json")
    order = FacebookSettings().post_metrics
    full = parse_post_metrics(post_id(1), bodies[0], order)
    assert full == ContentMetrics(
        external_content_id=post_id(1),
        value_kind=ValueKind.LIFETIME_SNAPSHOT,
        views=1234,
        reach=987,
        reactions=48,
        likes=40,
        comments=5,
        shares=3,
        clicks=56,
    )
    empty_insights = parse_post_metrics(post_id(4), bodies[3], order)
    assert (empty_insights.shares, empty_insights.comments) == (0, 0)  # said zero: zero
    assert empty_insights.views is None and empty_insights.reach is None  # said nothing: NULL
    assert empty_insights.reactions is None and empty_insights.clicks is None
    zeros = parse_post_metrics(post_id(5), bodies[4], order)
    assert (zeros.views, zeros.clicks, zeros.comments) == (0, 0, 2)
    assert zeros.shares is None  # no shares object: not guessed
    assert (zeros.reactions, zeros.likes) == (2, 0)  # dict lists only non-zero types
    assert zeros.reach is None  # metric missing from the data list
    no_insights = parse_post_metrics(post_id(6), bodies[5], order)
    assert no_insights.null_count() == 9 and no_insights.comments == 1
    empty_reactions = parse_post_metrics(post_id(7), bodies[6], order)
    assert (empty_reactions.reactions, empty_reactions.likes) == (0, 0)


def test_old_and_new_metric_names_map_to_columns() -> None:
    body = {
        "insights": {
            "data": [
                {"name": "post_impressions", "values": [{"value": 50}]},
                {"name": "post_impressions_unique", "values": [{"value": 40}]},
                {"name": "post_total_media_view_unique", "values": [{"value": 45}]},
                {"name": "post_video_views", "values": [{"value": 7}]},
                {"name": "post_reactions_by_type_total", "values": [{"value": "garbage"}]},
            ]
        }
    }
    metrics = parse_post_metrics(
        "p", body, ("post_total_media_view_unique", "post_impressions_unique")
    )
    assert (metrics.impressions, metrics.reach, metrics.video_views) == (50, 45, 7)
    assert metrics.reactions is None and metrics.likes is None  # malformed value: NULL


# --------------------------------------------------------------------------- batching


def _requested_id(item: dict[str, str]) -> str:
    return item["relative_url"].split("?", 1)[0]


def _requested_metrics(item: dict[str, str]) -> list[str]:
    url = item["relative_url"]
    if "insights.metric(" not in url:
        return []
    return url.split("insights.metric(", 1)[1].split(")", 1)[0].split(",")


def _ok_item(pid: str, views: int = 1) -> dict[str, Any]:
    body = {
        "id": pid,
        "comments": {"data": [], "summary": {"total_count": 0}},
        "insights": {"data": [{"name": "post_media_view", "values": [{"value": views}]}]},
    }
    return {"code": 200, "body": json.dumps(body)}


def fake_graph_batch(
    answer: Callable[[dict[str, str]], Any],
) -> Callable[[requests.PreparedRequest], Reply]:
    def respond(request: requests.PreparedRequest) -> Reply:
        assert request.method == "POST" and urlsplit(request.url or "").path == "/v25.0/"
        return Reply(200, [answer(item) for item in _batch_items(request)])

    return respond


def test_mixed_batch_skips_missing_objects_and_retries_null_items_only() -> None:
    client, adapter, waits = make_client(
        PAYLOADS.reply("batch_mixed.json"),
        PAYLOADS.reply("batch_retry_null_item.json"),
    )
    ids = [post_id(n) for n in range(1, 8)]
    batch = client.fetch_content_metrics(ids, DAY)
    assert [m.external_content_id for m in batch.metrics] == [
        post_id(n) for n in (1, 3, 4, 5, 6, 7)
    ]
    assert [(s.external_content_id, s.code) for s in batch.skipped] == [(post_id(2), "100/33")]
    assert batch.rejected_metrics == ()
    first, retry = (_batch_items(r) for r in adapter.requests)
    assert len(first) == 7
    assert [_requested_id(i) for i in retry] == [post_id(3)]  # only the null item
    assert first[0]["method"] == "GET"
    assert first[0]["relative_url"] == (
        f"{post_id(1)}?fields=shares,comments.summary(true).limit(0),permalink_url,status_type,"
        "attachments{media_type,type,target{id}},insights.metric("
        "post_media_view,post_total_media_view_unique,post_reactions_by_type_total,post_clicks)"
    )
    assert batch.metrics[1].views == 5000 and batch.metrics[1].likes == 300
    assert len(waits) == 1 and client.api_calls == 2
    assert_no_token_sent(adapter)


def test_batching_uses_ceil_n_over_batch_size_calls() -> None:
    settings = FacebookSettings()
    calls = math.ceil(120 / settings.batch_size)
    client, adapter, _ = make_client(
        *[fake_graph_batch(lambda item: _ok_item(_requested_id(item)))] * calls
    )
    ids = [post_id(n) for n in range(120)]
    batch = client.fetch_content_metrics(ids + ids[:5], DAY)  # repeats asked once
    assert [m.external_content_id for m in batch.metrics] == ids
    assert [len(_batch_items(r)) for r in adapter.requests] == [50, 50, 20]
    assert client.api_calls == calls == 3


def test_no_content_ids_means_no_call() -> None:
    client, adapter, _ = make_client()
    assert client.fetch_content_metrics([], DAY).metrics == ()
    assert adapter.requests == []


def test_item_credential_error_stops_at_once() -> None:
    expired = load("error_190_463.json")["body"]
    client, adapter, waits = make_client(
        Reply(200, [_ok_item(post_id(1)), {"code": 400, "body": json.dumps(expired)}])
    )
    with pytest.raises(PlatformError) as raised:
        client.fetch_content_metrics([post_id(1), post_id(2)], DAY)
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert raised.value.code == "190/463"
    assert len(adapter.requests) == 1 and waits == []


def test_transient_items_are_retried_a_bounded_number_of_times() -> None:
    throttled = {"code": 400, "body": json.dumps(load("error_613.json")["body"])}
    settings = FacebookSettings(retry=RetryConfig(max_attempts=3))
    client, adapter, waits = make_client(
        Reply(200, [_ok_item(post_id(1)), throttled]),
        Reply(200, [throttled]),
        Reply(200, [throttled]),
        settings=settings,
    )
    with pytest.raises(PlatformError) as raised:
        client.fetch_content_metrics([post_id(1), post_id(2)], DAY)
    assert raised.value.error_class is ErrorClass.TRANSIENT and raised.value.code == "613"
    assert len(adapter.requests) == 3 and len(waits) == 2


def test_a_batch_reply_of_the_wrong_length_is_invalid() -> None:
    client, _, _ = make_client(Reply(200, [_ok_item(post_id(1))]))
    with pytest.raises(PlatformError) as raised:
        client.fetch_content_metrics([post_id(1), post_id(2)], DAY)
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE


# --------------------------------------------------------------------------- invalid metric


def _graph_without(bad: set[str]) -> Callable[[dict[str, str]], Any]:
    invalid = {"code": 400, "body": json.dumps(load("error_100_invalid_metric.json")["body"])}

    def answer(item: dict[str, str]) -> Any:
        if bad & set(_requested_metrics(item)):
            return invalid
        return _ok_item(_requested_id(item), views=11)

    return answer


def test_invalid_metric_is_found_dropped_and_the_rest_still_fetched() -> None:
    settings = FacebookSettings(post_metrics=("post_media_view", "post_impressions", "post_clicks"))
    graph = fake_graph_batch(_graph_without({"post_impressions"}))
    client, adapter, _ = make_client(graph, graph, graph, graph, settings=settings)
    ids = [post_id(1), post_id(2)]
    batch = client.fetch_content_metrics(ids, DAY)
    assert batch.rejected_metrics == ("post_impressions",)
    assert [(m.external_content_id, m.views) for m in batch.metrics] == [(i, 11) for i in ids]
    # 1: the failing batch, 2: one probe call (one item per metric, one post), 3: the rerun
    probe = _batch_items(adapter.requests[1])
    assert {_requested_id(i) for i in probe} == {post_id(1)}
    assert [_requested_metrics(i) for i in probe] == [[m] for m in settings.post_metrics]
    assert client.api_calls == 3
    # Later calls of the same client no longer ask for the rejected metric.
    again = client.fetch_content_metrics(ids, DAY)
    assert again.rejected_metrics == ("post_impressions",) and client.api_calls == 4
    assert all(
        "post_impressions" not in _requested_metrics(i) for i in _batch_items(adapter.requests[3])
    )


def test_recorded_invalid_metric_batch_reply_is_recognised() -> None:
    settings = FacebookSettings(post_metrics=("post_impressions", "post_media_view"))
    client, _, _ = make_client(
        PAYLOADS.reply("batch_invalid_metric.json"),
        fake_graph_batch(_graph_without({"post_impressions"})),
        fake_graph_batch(_graph_without({"post_impressions"})),
        settings=settings,
    )
    batch = client.fetch_content_metrics([post_id(1), post_id(2)], DAY)
    assert batch.rejected_metrics == ("post_impressions",) and len(batch.metrics) == 2


def test_null_items_next_to_an_invalid_metric_are_asked_again_too() -> None:
    invalid = {"code": 400, "body": json.dumps(load("error_100_invalid_metric.json")["body"])}
    settings = FacebookSettings(post_metrics=("post_impressions", "post_media_view"))
    graph = fake_graph_batch(_graph_without({"post_impressions"}))
    client, adapter, _ = make_client(Reply(200, [invalid, None]), graph, graph, settings=settings)
    batch = client.fetch_content_metrics([post_id(1), post_id(2)], DAY)
    assert [m.external_content_id for m in batch.metrics] == [post_id(1), post_id(2)]
    assert [_requested_id(i) for i in _batch_items(adapter.requests[2])] == [
        post_id(1),
        post_id(2),
    ]


def test_invalid_metric_probe_moves_on_when_the_probed_post_is_gone() -> None:
    invalid = {"code": 400, "body": json.dumps(load("error_100_invalid_metric.json")["body"])}
    gone = {"code": 400, "body": json.dumps(load("error_100_33.json")["body"])}
    settings = FacebookSettings(post_metrics=("post_impressions", "post_media_view"))
    graph = _graph_without({"post_impressions"})
    client, adapter, _ = make_client(
        Reply(200, [invalid, invalid]),
        Reply(200, [gone, gone]),  # probe on post 1: deleted meanwhile, proves nothing
        fake_graph_batch(graph),  # probe on post 2
        fake_graph_batch(lambda item: gone if post_id(1) in item["relative_url"] else graph(item)),
        settings=settings,
    )
    batch = client.fetch_content_metrics([post_id(1), post_id(2)], DAY)
    assert batch.rejected_metrics == ("post_impressions",)
    assert {_requested_id(i) for i in _batch_items(adapter.requests[2])} == {post_id(2)}
    assert [m.external_content_id for m in batch.metrics] == [post_id(2)]
    assert [s.external_content_id for s in batch.skipped] == [post_id(1)]


def test_invalid_metric_that_cannot_be_pinned_down_raises() -> None:
    invalid = {"code": 400, "body": json.dumps(load("error_100_invalid_metric.json")["body"])}
    client, adapter, _ = make_client(
        Reply(200, [invalid]),
        fake_graph_batch(lambda item: _ok_item(_requested_id(item))),  # every metric alone works
    )
    with pytest.raises(InvalidMetricError):
        client.fetch_content_metrics([post_id(1)], DAY)
    assert len(adapter.requests) == 2


# --------------------------------------------------------------------------- classification

_STATUS_INDEPENDENT = [
    ("error_190_463.json", ErrorClass.PERMANENT_CREDENTIAL, "190/463"),
    ("error_190_460.json", ErrorClass.PERMANENT_CREDENTIAL, "190/460"),
    ("error_10.json", ErrorClass.PERMANENT_CREDENTIAL, "10"),
    ("error_200.json", ErrorClass.PERMANENT_CREDENTIAL, "200"),
    ("error_4.json", ErrorClass.TRANSIENT, "4/1504022"),
    ("error_17.json", ErrorClass.TRANSIENT, "17/2446079"),
    ("error_32.json", ErrorClass.TRANSIENT, "32"),
    ("error_613.json", ErrorClass.TRANSIENT, "613"),
    ("error_80001.json", ErrorClass.TRANSIENT, "80001"),
    ("error_100_33.json", ErrorClass.PERMANENT_OBJECT, "100/33"),
    ("error_100_2108006.json", ErrorClass.PERMANENT_OBJECT, "100/2108006"),
    ("error_100_invalid_param.json", ErrorClass.INVALID_RESPONSE, "100"),
    ("error_100_invalid_metric.json", ErrorClass.INVALID_RESPONSE, "100"),
]


@pytest.mark.parametrize("status", [400, 403])
@pytest.mark.parametrize(("name", "error_class", "code"), _STATUS_INDEPENDENT)
def test_recorded_errors_are_classified_by_code_not_status(
    name: str, error_class: ErrorClass, code: str, status: int
) -> None:
    error = classify_response(recorded_response(name, status=status))
    assert error is not None
    assert (error.error_class, error.code, error.http_status) == (error_class, code, status)
    assert error.platform == "facebook"
    assert isinstance(error, InvalidMetricError) == (name == "error_100_invalid_metric.json")


def test_recorded_transient_and_server_errors() -> None:
    service = classify_response(recorded_response("error_2_transient.json"))
    assert service is not None and service.error_class is ErrorClass.TRANSIENT
    html = classify_response(recorded_response("error_502_html.json"))
    assert html is not None and html.error_class is ErrorClass.TRANSIENT
    assert html.code == "http_502" and "Bad Gateway" in html.message


def test_a_200_that_is_not_json_is_an_invalid_response_with_a_short_excerpt() -> None:
    error = classify_response(recorded_response("ok_200_html.json"))
    assert error is not None and error.error_class is ErrorClass.INVALID_RESPONSE
    assert "hotel Wi-Fi" in error.message and len(error.message) < 300


def test_successful_json_is_not_an_error() -> None:
    assert classify_response(recorded_response("posts_page1.json")) is None


@pytest.mark.parametrize(
    ("error", "status", "expected"),
    [
        ({"code": 1}, 400, ErrorClass.TRANSIENT),
        ({"code": 341}, 400, ErrorClass.TRANSIENT),
        ({"code": 368}, 403, ErrorClass.TRANSIENT),
        ({"code": 80004}, 400, ErrorClass.TRANSIENT),
        ({"code": 100, "is_transient": True}, 400, ErrorClass.TRANSIENT),
        ({"code": 999}, 503, ErrorClass.TRANSIENT),
        ({"code": 190, "error_subcode": 467, "is_transient": True}, 400, "permanent_credential"),
        ({"code": 299}, 403, ErrorClass.PERMANENT_CREDENTIAL),
        ({"code": 300}, 400, ErrorClass.INVALID_RESPONSE),
        ({"code": 100, "error_subcode": 34}, 400, ErrorClass.INVALID_RESPONSE),
        ({"message": "no code at all"}, 400, ErrorClass.INVALID_RESPONSE),
    ],
)
def test_classification_table(error: dict[str, Any], status: int, expected: str) -> None:
    assert classify_graph_error(error, http_status=status).error_class == expected


def test_error_messages_are_redacted() -> None:
    error = classify_graph_error(
        {"message": f"bad https://g/x?access_token={TOKEN}&a=1 Bearer {TOKEN}", "code": 190},
        http_status=400,
    )
    assert TOKEN not in str(error) and TOKEN not in error.message


def test_buc_regain_time_becomes_retry_after() -> None:
    error = classify_response(recorded_response("error_80001.json"))
    assert error is not None and error.retry_after == 4 * 60


def test_a_long_buc_regain_time_raises_without_sleeping() -> None:
    recording = load("error_80001.json")
    buc = {PAGE: [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 60}]}
    recording["headers"]["X-Business-Use-Case-Usage"] = json.dumps(buc)
    client, adapter, waits = make_client(Reply.from_recording(recording))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert raised.value.retry_after == 3600
    assert len(adapter.requests) == 1 and waits == []


def test_rate_limited_listing_retries_then_succeeds() -> None:
    client, adapter, waits = make_client(
        PAYLOADS.reply("error_4.json"),
        PAYLOADS.reply("posts_page2_last.json"),
    )
    assert len(list(client.list_content(DAY))) == 3
    assert len(adapter.requests) == 2 and len(waits) == 1


def test_permission_error_on_listing_is_not_retried() -> None:
    client, adapter, waits = make_client(PAYLOADS.reply("error_10.json"))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert len(adapter.requests) == 1 and waits == []


# --------------------------------------------------------------------------- usage headers


def _usage(**headers: Any) -> dict[str, str]:
    return {name.replace("_", "-"): json.dumps(value) for name, value in headers.items()}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, 0.0),
        (_usage(X_App_Usage={"call_count": 80, "total_cputime": 5, "total_time": 5}), 0.0),
        (_usage(X_App_Usage={"call_count": 90, "total_cputime": 5, "total_time": 5}), 30.0),
        (_usage(X_Page_Usage={"call_count": 1, "total_cputime": 95, "total_time": 1}), 45.0),
        (_usage(X_App_Usage={"call_count": 130}), 60.0),
        (
            _usage(X_Business_Use_Case_Usage={PAGE: [{"type": "pages", "total_time": 90}]}),
            30.0,
        ),
        (
            _usage(
                X_Business_Use_Case_Usage={
                    PAGE: [{"call_count": 5, "estimated_time_to_regain_access": 2}]
                }
            ),
            120.0,
        ),
        ({"X-App-Usage": "{not json"}, 0.0),
        ({"X-App-Usage": "[1, 2]", "X-Page-Usage": '{"call_count": "high"}'}, 0.0),
        ({"X-Business-Use-Case-Usage": '{"1": "nope", "2": [3, {"call_count": true}]}'}, 0.0),
    ],
)
def test_usage_pause_formula_and_malformed_headers(
    headers: dict[str, str], expected: float
) -> None:
    assert usage_pause(headers, FacebookSettings()) == pytest.approx(expected)


def test_high_usage_slows_the_next_request_down() -> None:
    page1 = load("posts_page1.json")
    page1["headers"]["X-App-Usage"] = json.dumps({"call_count": 95})
    client, _, waits = make_client(
        Reply.from_recording(page1), PAYLOADS.reply("posts_page2_last.json")
    )
    list(client.list_content(DAY))
    assert waits == [pytest.approx(45.0)]
    assert client.session.waited_s == pytest.approx(45.0)


# --------------------------------------------------------------------------- hashtags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ()),
        ("", ()),
        ("#Summer fun #summer #SUMMER", ("summer",)),
        ("#Straße and #strasse", ("strasse",)),
        ("नमस्ते #नमस्ते_दुनिया", ("नमस्ते_दुनिया",)),
        ("日本語 \uff03東京 #大阪", ("東京", "大阪")),  # full-width number sign
        ("see https://x.com/a#frag and www.example.com/#top", ()),
        ("C# and foo#bar and &#39;quoted&#39; ##double", ()),
        ("we're #1 in #2026 #_", ()),
        ("#2026goals #top10", ("2026goals", "top10")),
        ("#don't stop #end.", ("don", "end")),
        ("(#inside) #a,#b", ("inside", "a", "b")),
    ],
)
def test_extract_hashtags(text: str | None, expected: tuple[str, ...]) -> None:
    assert extract_hashtags(text) == expected


# --------------------------------------------------------------------------- registry


def test_a_facebook_client_is_configured_from_the_environment() -> None:
    env = {
        "ANALYTICS_FACEBOOK_API_VERSION": "v26.0",
        "ANALYTICS_FACEBOOK_BASE_URL": "http://127.0.0.1:9/",
        "ANALYTICS_FACEBOOK_POST_METRICS": "post_media_view, post_clicks",
        "ANALYTICS_HTTP_MAX_ATTEMPTS": "2",
    }
    client = client_from_env(ACCOUNT, env)
    assert isinstance(client, FacebookClient)
    assert client.settings.api_version == "v26.0"
    assert client.settings.base_url == "http://127.0.0.1:9"
    assert client.settings.post_metrics == ("post_media_view", "post_clicks")
    assert client.settings.retry.max_attempts == 2
    assert client.api_calls == 0 and client.content_metrics_are_lifetime
    default = client_from_env(ACCOUNT, {})
    assert isinstance(default, FacebookClient) and default.settings == FacebookSettings()
    assert settings_type("facebook") is FacebookSettings
    assert "facebook" in SUPPORTED_PLATFORMS


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ANALYTICS_FACEBOOK_API_VERSION", "25"),
        ("ANALYTICS_FACEBOOK_BASE_URL", "graph.facebook.com"),
        ("ANALYTICS_FACEBOOK_POST_METRICS", " , "),
        ("ANALYTICS_HTTP_MAX_ATTEMPTS", "lots"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        client_from_env(ACCOUNT, {name: value})


def test_registry_rejects_unknown_platforms() -> None:
    with pytest.raises(ValueError, match="supported: facebook"):
        create_client(Account("org-1", "int-9", "myspace", "9", Secret(TOKEN)), None)


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        FacebookSettings(batch_size=51)
    with pytest.raises(ValueError, match="api_version"):
        FacebookSettings(api_version="25")


def test_client_session_reports_calls() -> None:
    session = ApiSession("facebook", classify_response, sleep=lambda _s: None)
    client = FacebookClient(FacebookSettings(), ACCOUNT, session=session)
    assert client.api_calls == 0 and client.session is session
