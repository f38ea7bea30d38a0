"""Facebook reels (`video_insights` in the same batch), page-level daily insights with their
US-Pacific `end_time`, and the version-expired error, against recorded payloads."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from analytics_pipeline.platforms.base import Account, PlatformError, Secret
from analytics_pipeline.platforms.facebook import (
    FacebookClient,
    FacebookSettings,
    classify_response,
    create_session,
    merge_reel_metrics,
    parse_page_insights,
    parse_post_metrics,
    parse_reel_metrics,
    reel_video_id,
)
from analytics_pipeline.platforms.graph import pacific_day
from analytics_pipeline.records import ContentFormat, ErrorClass
from analytics_pipeline_tests.fakes import (
    Payloads,
    Reply,
    ScriptedAdapter,
    graph_batch_items,
    scripted_session,
    sent_text,
)
from analytics_pipeline_tests.fakes import ok_item as ok
from analytics_pipeline_tests.helpers import settings_from_env

load = Payloads("facebook").load
PAGE = "104589123456789"
VIDEO = "1220000000000001"
REEL_POST = f"{PAGE}_{VIDEO}"
TOKEN = "EAAGpageTOKENabcdef0123456789"
ACCOUNT = Account("org-1", "int-1", "facebook", PAGE, Secret(TOKEN))
DAY = dt.date(2026, 11, 20)


def make_client(
    *steps: Any, settings: FacebookSettings | None = None
) -> tuple[FacebookClient, ScriptedAdapter]:
    settings = settings or FacebookSettings()
    http, adapter = scripted_session(*steps)
    session = create_session(settings, sleep=lambda _s: None, http=http)
    return FacebookClient(settings, ACCOUNT, session=session), adapter


def batch_urls(request: requests.PreparedRequest) -> list[str]:
    return [item["relative_url"] for item in graph_batch_items(request)]


def plain_post(post_id: str) -> dict[str, Any]:
    return ok({"id": post_id, "comments": {"data": [], "summary": {"total_count": 2}}})


# --------------------------------------------------------------------------- pacific days


@pytest.mark.parametrize(
    ("end_time", "day"),
    [
        ("2026-11-21T08:00:00+0000", dt.date(2026, 11, 20)),  # PST
        ("2026-11-20T08:00:00+0000", dt.date(2026, 11, 19)),
        ("2026-03-09T07:00:00+0000", dt.date(2026, 3, 8)),  # PDT, the 23-hour day
        ("2026-03-08T08:00:00+0000", dt.date(2026, 3, 7)),  # the last PST midnight
        ("2026-11-01T07:00:00+0000", dt.date(2026, 10, 31)),  # PDT, before the switch back
        ("2026-11-02T08:00:00+0000", dt.date(2026, 11, 1)),  # the 25-hour day
        ("2026-11-21T07:00:00+0000", dt.date(2026, 11, 20)),  # an hour off still lands right
    ],
)
def test_pacific_end_time_maps_to_the_day_that_ends_there(end_time: str, day: dt.date) -> None:
    moment = dt.datetime.strptime(end_time, "%Y-%m-%dT%H:%M:%S%z")
    assert pacific_day(moment) == day


def test_page_insights_values_are_picked_by_pacific_day() -> None:
    order = FacebookSettings().page_metrics
    nov = parse_page_insights(load("page_insights_nov.json")["body"], DAY, order)
    assert nov == {"views": 1720, "reach": 1010, "new_followers": 0, "profile_views": 41}
    day_before = parse_page_insights(load("page_insights_nov.json")["body"], DAY - dt.timedelta(1))
    assert day_before["views"] == 1500
    march = load("page_insights_march.json")["body"]
    assert parse_page_insights(march, dt.date(2026, 3, 8)) == {"views": 655, "profile_views": 9}
    assert parse_page_insights(march, dt.date(2026, 3, 7)) == {"views": 610, "profile_views": 12}
    assert parse_page_insights(march, dt.date(2026, 3, 9)) == {"views": None, "profile_views": None}


def test_account_metrics_in_one_batch_call() -> None:
    client, adapter = make_client(
        Reply(
            200,
            [ok(load("page_snapshot.json")["body"]), ok(load("page_insights_nov.json")["body"])],
        )
    )
    metrics = client.fetch_account_metrics(DAY, include_snapshot=True)
    assert metrics.followers_total == 27864  # followers_count, not fan_count
    assert (metrics.views, metrics.reach, metrics.new_followers) == (1720, 1010, 0)
    assert metrics.profile_views == 41
    assert metrics.website_clicks is None and metrics.impressions is None  # no current metric
    assert client.api_calls == 1
    snapshot, insights = batch_urls(adapter.requests[0])
    assert snapshot == f"{PAGE}?fields=followers_count,fan_count"
    start = int(dt.datetime(2026, 11, 20, tzinfo=dt.UTC).timestamp())
    assert urlsplit(insights).path == f"{PAGE}/insights"
    assert parse_qs(urlsplit(insights).query) == {
        "metric": [",".join(FacebookSettings().page_metrics)],
        "period": ["day"],
        "since": [str(start)],
        "until": [str(start + 2 * 86400)],
    }
    assert adapter.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in sent_text(adapter.requests[0])


def test_account_metrics_without_snapshot_and_with_a_deprecated_page_metric() -> None:
    settings = FacebookSettings(page_metrics=("page_impressions", "page_media_view"))
    invalid = {"code": 400, "body": json.dumps(load("error_100_invalid_metric.json")["body"])}

    def graph(request: requests.PreparedRequest) -> Reply:
        urls = batch_urls(request)
        return Reply(
            200,
            [
                invalid if "page_impressions" in url else ok(load("page_insights_nov.json")["body"])
                for url in urls
            ],
        )

    client, adapter = make_client(graph, graph, graph, settings=settings)
    metrics = client.fetch_account_metrics(DAY, include_snapshot=False)
    assert metrics.rejected_metrics == ("page_impressions",)
    assert metrics.views == 1720 and metrics.followers_total is None
    assert [len(batch_urls(r)) for r in adapter.requests] == [1, 2, 1]


# --------------------------------------------------------------------------- reels


def test_reel_video_id_from_attachment_target_or_permalink() -> None:
    post = json.loads(load("batch_reel_post.json")["body"][0]["body"])
    assert reel_video_id(post) == VIDEO
    assert reel_video_id({"permalink_url": "https://www.facebook.com/reel/998877/"}) == "998877"
    video = {"attachments": {"data": [{"media_type": "video", "target": {"id": "5"}}]}}
    assert reel_video_id(video) is None  # a plain video is not a reel


def test_reel_metrics_null_versus_zero_and_the_merge() -> None:
    order = FacebookSettings().reel_metrics
    reel = parse_reel_metrics(REEL_POST, load("video_insights_reel.json")["body"], order)
    assert (reel.views, reel.reach, reel.reactions, reel.likes) == (8120, 5402, 354, 310)
    assert reel.comments == 17 and reel.shares is None  # SHARE absent: not guessed as 0
    empty = parse_reel_metrics(REEL_POST, {"data": []}, order)
    assert empty.null_count() == 10
    post_body = json.loads(load("batch_reel_post.json")["body"][0]["body"])
    post = parse_post_metrics(REEL_POST, post_body, FacebookSettings().post_metrics)
    merged = merge_reel_metrics(post, reel)
    assert (merged.views, merged.reach, merged.comments) == (8120, 5402, 17)  # the reel wins
    assert merged.clicks == 12  # only the post said it
    assert merged.shares is None


def test_reels_known_from_the_listing_ride_in_the_same_batch() -> None:
    posts = {
        "data": [
            {
                "id": REEL_POST,
                "created_time": "2026-11-20T10:00:00+0000",
                "permalink_url": f"https://www.facebook.com/reel/{VIDEO}/",
                "status_type": "added_video",
                "attachments": {"data": [{"media_type": "video", "target": {"id": VIDEO}}]},
            },
            {"id": f"{PAGE}_2", "created_time": "2026-11-20T09:00:00+0000"},
        ]
    }
    client, adapter = make_client(
        Reply(200, posts),
        Reply(
            200,
            [
                load("batch_reel_post.json")["body"][0],
                load("batch_reel_post.json")["body"][1],
                plain_post(f"{PAGE}_2"),
            ],
        ),
    )
    items = list(client.list_content(DAY))
    assert [i.format for i in items] == [ContentFormat.REEL, ContentFormat.TEXT]
    batch = client.fetch_content_metrics([REEL_POST, f"{PAGE}_2"], DAY)
    assert client.api_calls == 2  # the listing and ONE batch
    urls = batch_urls(adapter.requests[1])
    assert urls[0].startswith(f"{REEL_POST}?fields=")
    assert urls[1] == f"{VIDEO}/video_insights?metric=" + ",".join(FacebookSettings().reel_metrics)
    assert urls[2].startswith(f"{PAGE}_2?fields=")
    reel, other = batch.metrics
    assert (reel.external_content_id, reel.views, reel.comments, reel.clicks) == (
        REEL_POST,
        8120,
        17,
        12,
    )
    assert other.comments == 2 and other.views is None


def test_a_reel_first_seen_in_a_metrics_reply_costs_one_more_batch_once() -> None:
    reel_post, reel_insights = load("batch_reel_post.json")["body"]
    client, adapter = make_client(
        Reply(200, [reel_post, plain_post(f"{PAGE}_2")]),
        Reply(200, [reel_insights]),
        Reply(200, [reel_post, reel_insights]),
    )
    ids = [REEL_POST, f"{PAGE}_2"]
    first = client.fetch_content_metrics(ids, DAY)
    assert first.metrics[0].views == 8120 and client.api_calls == 2
    assert batch_urls(adapter.requests[1]) == [
        f"{VIDEO}/video_insights?metric=" + ",".join(FacebookSettings().reel_metrics)
    ]
    again = client.fetch_content_metrics(ids[:1], DAY)  # now known: one call
    assert again.metrics[0].views == 8120 and client.api_calls == 3


def test_a_stored_reel_permalink_puts_its_insights_in_the_first_batch() -> None:
    """A fresh client (a new run) learns the video id from the permalink the warehouse stored,
    so a reel listed by an earlier run costs no extra batch call."""
    reel_post, reel_insights = load("batch_reel_post.json")["body"]
    client, adapter = make_client(Reply(200, [reel_post, reel_insights, plain_post(f"{PAGE}_2")]))
    permalinks = {REEL_POST: f"https://www.facebook.com/reel/{VIDEO}/", f"{PAGE}_2": None}
    batch = client.fetch_content_metrics([REEL_POST, f"{PAGE}_2"], DAY, permalinks=permalinks)
    assert client.api_calls == 1
    urls = batch_urls(adapter.requests[0])
    assert urls[1] == f"{VIDEO}/video_insights?metric=" + ",".join(FacebookSettings().reel_metrics)
    assert [m.views for m in batch.metrics] == [8120, None]


def test_a_non_reel_permalink_adds_nothing_to_the_batch() -> None:
    client, adapter = make_client(Reply(200, [plain_post(f"{PAGE}_2")]))
    permalinks = {f"{PAGE}_2": f"https://www.facebook.com/{PAGE}/posts/2"}
    client.fetch_content_metrics([f"{PAGE}_2"], DAY, permalinks=permalinks)
    assert len(batch_urls(adapter.requests[0])) == 1 and client.api_calls == 1


def test_a_gone_reel_video_leaves_the_post_metrics() -> None:
    reel_post = load("batch_reel_post.json")["body"][0]
    gone = {"code": 400, "body": json.dumps(load("error_100_33.json")["body"])}
    client, _ = make_client(Reply(200, [reel_post]), Reply(200, [gone]))
    batch = client.fetch_content_metrics([REEL_POST], DAY)
    assert batch.skipped == ()
    assert (batch.metrics[0].views, batch.metrics[0].comments) == (7000, 16)


def test_a_sunset_version_names_the_facebook_setting() -> None:
    reply = Reply.from_recording(load("error_2635.json"))
    response = reply.to_response(
        requests.Request("GET", "https://graph.facebook.com/v1.0/x").prepare()
    )
    error = classify_response(response)
    assert error is not None and error.error_class is ErrorClass.PERMANENT_CONFIG
    assert "ANALYTICS_FACEBOOK_API_VERSION" in error.message and error.code == "2635"
    client, adapter = make_client(reply)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.PERMANENT_CONFIG
    assert len(adapter.requests) == 1


def test_reel_and_page_metric_lists_are_configuration() -> None:
    settings = settings_from_env(
        "facebook",
        {
            "ANALYTICS_FACEBOOK_REEL_METRICS": "fb_reels_total_plays",
            "ANALYTICS_FACEBOOK_PAGE_METRICS": "page_media_view,page_follows",
        },
    )
    assert settings.reel_metrics == ("fb_reels_total_plays",)
    assert settings.page_metrics == ("page_media_view", "page_follows")
    defaults = FacebookSettings()
    assert not any("impressions" in m for m in defaults.page_metrics)
    assert "page_fans" not in defaults.page_metrics
