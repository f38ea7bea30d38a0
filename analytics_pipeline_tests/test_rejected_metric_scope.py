"""A metric the platform rejects is dropped only for the kind of object that rejected it, for
the client's lifetime (one run): Instagram per `media_type` x `media_product_type` (a legacy
feed video refusing `views` does not cost the images, albums and reels their views), Facebook
per post item / reel `video_insights` / page insights. Over the sandbox (real HTTP) and against
recorded payloads.

Expected values come from the sandbox's world functions, never from numbers written here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from analytics_pipeline.platforms.base import Account, Secret
from analytics_pipeline.platforms.facebook import FacebookClient, FacebookSettings
from analytics_pipeline.platforms.http import RetryConfig
from analytics_pipeline.platforms.instagram import (
    InstagramClient,
    InstagramSettings,
    create_session,
    media_scope,
)
from analytics_pipeline.records import ContentMetrics
from analytics_pipeline_tests.fakes import Payloads, Reply, graph_batch_items, scripted_session
from analytics_pipeline_tests.fakes import ok_item as ok
from analytics_sandbox import FixedClock, SandboxConfig, SandboxServer, data
from analytics_sandbox import instagram_data as igd
from analytics_sandbox.data import PostFormat
from analytics_sandbox.faults import FaultState

IG = "17841400000000001"
PAGE = "1000001"
TOKEN = "IGQVJrejectTOKEN-77a1"
CONFIG = SandboxConfig(posts_per_day=(2, 6))
NOW = dt.datetime(2026, 11, 20, 23, 0, tzinfo=dt.UTC)
FAST = RetryConfig(backoff_base_s=0.001, backoff_max_s=0.002, max_attempts=4)
IG_ACCOUNT = Account("org-1", "int-ig", "instagram", IG, Secret(TOKEN))
FB_ACCOUNT = Account("org-1", "int-fb", "facebook", PAGE, Secret(TOKEN))
FEED_METRICS = InstagramSettings().feed_metrics
SHAPES = {igd.Shape.IMAGE, igd.Shape.CAROUSEL, igd.Shape.VIDEO, igd.Shape.REEL}


def ig_client(sandbox: SandboxServer, clock: FixedClock, **settings: Any) -> InstagramClient:
    config = InstagramSettings(base_url=sandbox.base_url, retry=FAST, **settings)
    return InstagramClient(config, IG_ACCOUNT, sleep=lambda _s: None, clock=clock)


def fb_client(sandbox: SandboxServer, **settings: Any) -> FacebookClient:
    config = FacebookSettings(base_url=sandbox.base_url, retry=FAST, **settings)
    return FacebookClient(config, FB_ACCOUNT, sleep=lambda _s: None)


def media_of(days: list[dt.date]) -> list[igd.IgMedia]:
    return [m for day in days for m in igd.media_for_day(IG, day, CONFIG)]


def mixed_days() -> list[dt.date]:
    """The newest two past days whose feed media and reels, together, hold an image, a
    carousel, a legacy feed video and a reel."""
    for offset in range(1, 120):
        days = [NOW.date() - dt.timedelta(days=offset + n) for n in (0, 1)]
        if {m.shape for m in media_of(days)} >= SHAPES:
            return days
    raise AssertionError("no mixed pair of days in the synthetic world; widen the search")


def truth(media: igd.IgMedia) -> dict[str, int | None]:
    """The columns the client must record for feed media or a reel at NOW."""
    values = igd.media_insights(media, NOW, CONFIG)
    return {
        "views": values["views"],
        "reach": values["reach"],
        "likes": values["likes"],
        "comments": values["comments"],
        "shares": values["shares"],
        "saves": values["saved"],
    }


def listed_ids(client: InstagramClient, days: list[dt.date]) -> list[str]:
    return [item.external_content_id for day in days for item in client.list_content(day)]


def assert_views_only_missing_for_feed_videos(
    rows: Sequence[ContentMetrics], world: Mapping[str, igd.IgMedia]
) -> None:
    """Every column as the world says, except a feed video's views: NULL."""
    for metrics in rows:
        media = world[metrics.external_content_id]
        expected = truth(media)
        if media.shape is igd.Shape.VIDEO:
            expected["views"] = None  # the platform refused it for this type only
        got = {name: getattr(metrics, name) for name in expected}
        assert got == expected, (media.shape, media.id)


# --------------------------------------------------------------------------- instagram, sandbox


def test_a_feed_video_rejecting_views_costs_only_feed_videos_their_views(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    sandbox.faults.invalid_metrics_for = {"VIDEO/FEED": ["views"]}
    days = mixed_days()
    client = ig_client(sandbox, clock)
    ids = listed_ids(client, days)
    world = {m.id: m for m in media_of(days)}
    assert set(ids) == set(world) and {world[i].shape for i in ids} >= SHAPES
    videos = [i for i in ids if world[i].shape is igd.Shape.VIDEO]

    before = len(sandbox.requests())
    batch = client.fetch_content_metrics(ids, NOW.date())
    # The page, one probe of a feed video (one item per feed metric), the videos again.
    assert [r.batch_size for r in sandbox.requests()[before:]] == [
        len(ids),
        len(FEED_METRICS),
        len(videos),
    ]
    assert [m.external_content_id for m in batch.metrics] == ids and batch.skipped == ()
    assert_views_only_missing_for_feed_videos(batch.metrics, world)

    # Later days of the same run: images, albums and reels still get views; a feed video is
    # asked without it from the start. One call.
    later = [day - dt.timedelta(days=2) for day in days]
    more = listed_ids(client, later)
    world.update({m.id: m for m in media_of(later)})
    assert {world[i].shape for i in more} & {igd.Shape.IMAGE, igd.Shape.CAROUSEL}
    before = len(sandbox.requests())
    again = client.fetch_content_metrics([*more, *videos], NOW.date())
    assert len(sandbox.requests()) - before == 1
    assert_views_only_missing_for_feed_videos(again.metrics, world)
    assert batch.rejected_metrics == again.rejected_metrics == ("views (VIDEO/FEED)",)


def test_a_rejection_in_one_batch_chunk_does_not_reach_the_next_chunks(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    """A page bigger than batch_size: the video fails in the first chunk, the images and the
    album of the later chunks of the SAME call still get views."""
    sandbox.faults.invalid_metrics_for = {"VIDEO/FEED": ["views"]}
    days = mixed_days()
    client = ig_client(sandbox, clock, batch_size=3)
    listed = listed_ids(client, days)
    world = {m.id: m for m in media_of(days)}
    ids = sorted(listed, key=lambda i: world[i].shape is not igd.Shape.VIDEO)  # videos first
    chunks = -(-len(ids) // 3)
    before = len(sandbox.requests())
    batch = client.fetch_content_metrics(ids, NOW.date())
    # + one probe call (its items are not split by batch_size), + the videos again
    assert len(sandbox.requests()) - before == chunks + 2
    assert len(batch.metrics) == len(ids)
    assert_views_only_missing_for_feed_videos(batch.metrics, world)


def test_a_metric_invalid_for_every_type_is_found_in_one_probe_call(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    """Finer scopes do not cost more calls: every type that failed is probed in ONE call."""
    sandbox.faults.invalid_metrics = {"saved"}
    days = mixed_days()
    client = ig_client(sandbox, clock)
    ids = listed_ids(client, days)
    world = {m.id: m for m in media_of(days)}
    scopes = {f"{world[i].media_type}/{world[i].product_type}" for i in ids}
    assert len(scopes) == 4  # IMAGE/FEED, CAROUSEL_ALBUM/FEED, VIDEO/FEED, VIDEO/REELS
    before = len(sandbox.requests())
    batch = client.fetch_content_metrics(ids, NOW.date())
    sizes = [r.batch_size for r in sandbox.requests()[before:]]
    assert sizes == [len(ids), len(scopes) * len(FEED_METRICS), len(ids)]
    assert batch.rejected_metrics == ("saved",)  # no type answered it: the bare name
    assert all(m.saves is None and m.views is not None for m in batch.metrics)


def test_the_scoped_fault_switch_over_http(sandbox: SandboxServer, http: requests.Session) -> None:
    admin = f"{sandbox.base_url}/_sandbox/faults"
    changed = http.post(admin, json={"invalid_metrics_for": {"VIDEO/FEED": ["views", "reach"]}})
    assert changed.status_code == 200
    assert changed.json()["invalid_metrics_for"] == {"VIDEO/FEED": ["reach", "views"]}
    assert sandbox.faults.invalid_for("VIDEO/FEED") == {"views", "reach"}
    assert sandbox.faults.invalid_for("IMAGE/FEED") == frozenset()
    for bad in ({"invalid_metrics_for": ["views"]}, {"invalid_metrics_for": {"video": ["x"]}}):
        assert http.post(admin, json=bad).status_code == 400
    assert FaultState().snapshot()["invalid_metrics_for"] == {}

    video = next(m for m in media_of(mixed_days()) if m.shape is igd.Shape.VIDEO)
    image = next(m for m in media_of(mixed_days()) if m.shape is igd.Shape.IMAGE)
    url = f"{sandbox.base_url}/v25.0/{{}}/insights"
    refused = http.get(url.format(video.id), params={"metric": "reach,views,likes"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == 100
    assert refused.json()["error"]["message"] == (
        "(#100) The Media Insights API does not support the reach metric for this media "
        "product type."
    )
    answered = http.get(url.format(image.id), params={"metric": "reach,views,likes"})
    assert answered.status_code == 200 and len(answered.json()["data"]) == 3


# --------------------------------------------------------------------------- facebook, sandbox


def test_facebook_reel_and_page_rejections_stay_where_they_were_rejected(
    sandbox: SandboxServer,
) -> None:
    sandbox.faults.invalid_metrics_for = {
        "reel": ["post_video_social_actions"],
        "page": ["page_views_total"],
    }
    client = fb_client(sandbox)
    account = client.fetch_account_metrics(
        NOW.date() - dt.timedelta(days=1), include_snapshot=False
    )
    assert account.rejected_metrics == ("page_views_total",) and account.views is not None

    days = [NOW.date() - dt.timedelta(days=n) for n in range(1, 6)]
    ids = [item.external_content_id for day in days for item in client.list_content(day)]
    posts = {p.id: p for day in days for p in data.posts_for_day(PAGE, day, CONFIG)}
    reels = [i for i in ids if posts[i].format is PostFormat.REEL]
    assert reels and len(reels) < len(ids), "no reel and post mix in the window: widen it"
    before = client.api_calls
    batch = client.fetch_content_metrics(ids, NOW.date())
    # The batch, one probe of a reel's video_insights, the reels' video_insights again.
    assert client.api_calls - before == 3
    assert batch.rejected_metrics == ("post_video_social_actions",)  # not the page's metric
    for metrics in batch.metrics:
        post = posts[metrics.external_content_id]
        world = data.metrics_for(post, NOW.date(), CONFIG)
        assert (metrics.views, metrics.reach) == (world.media_view, world.media_view_unique)
        assert metrics.comments == world.comments  # reels: from the post item instead
        assert metrics.reactions == world.reactions_total

    before = client.api_calls
    assert client.fetch_content_metrics(ids, NOW.date()).metrics == batch.metrics
    assert client.api_calls - before == 1  # the reels asked without it straight away


def test_a_metric_rejected_for_facebook_posts_is_still_asked_from_reels(
    sandbox: SandboxServer,
) -> None:
    """post_impressions_unique is deprecated on post items but served by a reel's
    video_insights: dropped for posts only, and reported with that scope."""
    post_metrics = (*FacebookSettings().post_metrics, "post_impressions_unique")
    client = fb_client(sandbox, post_metrics=post_metrics)
    days = [NOW.date() - dt.timedelta(days=n) for n in range(1, 6)]
    ids = [item.external_content_id for day in days for item in client.list_content(day)]
    posts = {p.id: p for day in days for p in data.posts_for_day(PAGE, day, CONFIG)}
    assert any(posts[i].format is PostFormat.REEL for i in ids), "no reel in the window"
    before = client.api_calls
    batch = client.fetch_content_metrics(ids, NOW.date())
    assert client.api_calls - before == 3  # the batch, one probe of a post item, posts again
    assert batch.rejected_metrics == ("post_impressions_unique (post)",)
    for metrics in batch.metrics:
        world = data.metrics_for(posts[metrics.external_content_id], NOW.date(), CONFIG)
        assert (metrics.views, metrics.reach) == (world.media_view, world.media_view_unique)
    before = len(sandbox.requests())
    client.fetch_content_metrics(ids, NOW.date())
    assert len(sandbox.requests()) - before == 1 and sandbox.requests()[-1].status == 200


# --------------------------------------------------------------------------- recorded payloads

PAYLOADS = Payloads("instagram")


def mid(n: int) -> str:
    return f"179{n:014d}"


def item_metrics(item: dict[str, str]) -> list[str]:
    return parse_qs(urlsplit(item["relative_url"]).query)["metric"][0].split(",")


def insights(names: list[str], value: int = 7) -> dict[str, Any]:
    return ok(
        {"data": [{"name": n, "period": "lifetime", "values": [{"value": value}]} for n in names]}
    )


def scripted_ig_client(*steps: Any) -> tuple[InstagramClient, Any]:
    settings = InstagramSettings()
    http, adapter = scripted_session(
        PAYLOADS.reply("media_page1.json"),
        PAYLOADS.reply("media_page2_last.json"),
        PAYLOADS.reply("stories.json"),
        *steps,
    )
    session = create_session(settings, sleep=lambda _s: None, http=http)
    client = InstagramClient(settings, IG_ACCOUNT, session=session, clock=lambda: NOW)
    list(client.list_content(NOW.date()))  # learns each media's type from the listing
    return client, adapter


def answer_all(request: requests.PreparedRequest) -> Reply:
    return Reply(200, [insights(item_metrics(item)) for item in graph_batch_items(request)])


def probe_reply(request: requests.PreparedRequest) -> Reply:
    rejected = PAYLOADS.load("error_100_unsupported_metric.json")["body"]
    items = graph_batch_items(request)
    return Reply(
        200,
        [
            {"code": 400, "body": json.dumps(rejected)}
            if item_metrics(item) == ["views"]
            else insights(item_metrics(item))
            for item in items
        ],
    )


def test_recorded_mixed_page_where_the_feed_video_rejects_views() -> None:
    assert [media_scope(m) for m in PAYLOADS.load("media_page1.json")["body"]["data"]] == [
        "VIDEO/REELS",
        "CAROUSEL_ALBUM/FEED",
        "IMAGE/FEED",
        "VIDEO/FEED",
    ]
    page = [mid(1), mid(2), mid(3), mid(4)]  # reel, carousel, image, legacy feed video
    client, adapter = scripted_ig_client(
        PAYLOADS.reply("batch_feed_video_rejects_views.json"),
        probe_reply,  # one item per feed metric, for the video
        answer_all,  # the video again, without views
        answer_all,  # a later call of the same client
    )
    batch = client.fetch_content_metrics(page, NOW.date())
    by_id = {m.external_content_id: m for m in batch.metrics}
    assert (by_id[mid(1)].views, by_id[mid(2)].views, by_id[mid(3)].views) == (5120, 1480, 640)
    assert by_id[mid(4)].views is None and by_id[mid(4)].reach == 7
    probe, rerun = (graph_batch_items(r) for r in adapter.requests[4:6])
    assert [item_metrics(i) for i in probe] == [[m] for m in FEED_METRICS]
    assert [item_metrics(i) for i in rerun] == [list(FEED_METRICS[1:])]
    assert client.api_calls == 3 + 3  # listing (3), then batch + probe + rerun

    later = client.fetch_content_metrics([mid(2), mid(3), mid(4), mid(1)], NOW.date())
    sent = {
        i["relative_url"].split("/")[0]: item_metrics(i)
        for i in graph_batch_items(adapter.requests[-1])
    }
    assert sent[mid(2)] == sent[mid(3)] == list(FEED_METRICS)  # album and image: views asked
    assert sent[mid(4)] == list(FEED_METRICS[1:])  # the feed video: not any more
    assert all(
        later_row.views is not None
        for later_row in later.metrics
        if later_row.external_content_id != mid(4)
    )
    assert client.api_calls == 7
    assert batch.rejected_metrics == later.rejected_metrics == ("views (VIDEO/FEED)",)


def test_instagram_content_batches_do_not_report_account_rejections() -> None:
    gone = PAYLOADS.load("error_100_no_longer_supported.json")["body"]

    def account(request: requests.PreparedRequest) -> Reply:
        items = graph_batch_items(request)
        return Reply(
            200,
            [
                {"code": 400, "body": json.dumps(gone)}
                if "impressions" in item["relative_url"]
                else ok({"data": []})
                for item in items
            ],
        )

    def media_type(request: requests.PreparedRequest) -> Reply:
        stamp = "2026-11-20T09:15:00+0000"
        info = {"media_type": "IMAGE", "media_product_type": "FEED", "timestamp": stamp}
        return Reply(200, [ok(info) for _ in graph_batch_items(request)])

    settings = InstagramSettings(account_metrics=("reach", "impressions"))
    http, _ = scripted_session(account, account, media_type, answer_all)
    session = create_session(settings, sleep=lambda _s: None, http=http)
    client = InstagramClient(settings, IG_ACCOUNT, session=session, clock=lambda: NOW)
    metrics = client.fetch_account_metrics(NOW.date(), include_snapshot=False)
    assert metrics.rejected_metrics == ("impressions",)  # the failing call, one probe
    batch = client.fetch_content_metrics([mid(3)], NOW.date())
    assert batch.rejected_metrics == () and batch.metrics[0].views == 7


@pytest.mark.parametrize(
    ("media", "scope"),
    [
        ({"media_type": "VIDEO", "media_product_type": "FEED"}, "VIDEO/FEED"),
        ({"media_type": "video", "media_product_type": "reels"}, "VIDEO/REELS"),
        ({"media_type": "IMAGE", "media_product_type": "STORY"}, "IMAGE/STORY"),
        ({"media_type": "CAROUSEL_ALBUM"}, "CAROUSEL_ALBUM/UNKNOWN"),
    ],
)
def test_media_scope(media: dict[str, str], scope: str) -> None:
    assert media_scope(media) == scope
