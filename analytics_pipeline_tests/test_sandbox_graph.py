"""The Graph sandbox's reels, page insights, Instagram objects and account-keyed fault switches
over real HTTP (127.0.0.1), and the Facebook client's reels and page metrics against it."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import requests

from analytics_pipeline.platforms.base import Account, PlatformError, Secret
from analytics_pipeline.platforms.facebook import FacebookClient, FacebookSettings
from analytics_pipeline.platforms.http import RetryConfig
from analytics_pipeline.records import ErrorClass
from analytics_sandbox import FixedClock, SandboxConfig, SandboxServer, data
from analytics_sandbox import instagram_data as igd
from analytics_sandbox.data import PostFormat, SyntheticPost

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
PAGE = "1000001"
IG = "17841400000000001"
TOKEN = "sandbox-graph-token-value"
CONFIG = SandboxConfig(posts_per_day=(2, 6))
FAST = RetryConfig(backoff_base_s=0.001, backoff_max_s=0.002)
ACCOUNT = Account("org-1", "int-fb", "facebook", PAGE, Secret(TOKEN))


def graph(sandbox: SandboxServer, path: str) -> str:
    return f"{sandbox.base_url}/v25.0/{path}"


def posts_of(days: int = 10, page: str = PAGE) -> list[SyntheticPost]:
    posts = [
        post
        for offset in range(1, days + 1)
        for post in data.posts_for_day(page, NOW.date() - dt.timedelta(days=offset), CONFIG)
    ]
    return sorted(posts, key=SyntheticPost.sort_key, reverse=True)


def reels(days: int = 10) -> list[SyntheticPost]:
    found = [post for post in posts_of(days) if post.format is PostFormat.REEL]
    assert found, "no reel in the window: widen it"
    return found


def ts(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def fb_client(sandbox: SandboxServer, **settings: Any) -> FacebookClient:
    config = FacebookSettings(base_url=sandbox.base_url, retry=FAST, **settings)
    return FacebookClient(config, ACCOUNT, sleep=lambda _s: None)


# --------------------------------------------------------------------------- reels


def test_video_reels_lists_the_pages_reels_as_videos(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    since = dt.datetime.combine(NOW.date() - dt.timedelta(days=10), dt.time(), tzinfo=dt.UTC)
    params = {
        "fields": "id,description,permalink_url,created_time",
        "since": str(ts(since)),
        "limit": "2",
    }
    reply = http.get(graph(sandbox, f"{PAGE}/video_reels"), params=params)
    assert reply.status_code == 200
    body = reply.json()
    expected = reels()
    assert [v["id"] for v in body["data"]] == [p.video_id for p in expected[:2]]
    assert body["data"][0]["permalink_url"] == f"/reel/{expected[0].video_id}/"
    assert "next" in body["paging"]
    assert all(data.decode_video_id(v["id"], CONFIG) is not None for v in body["data"])


def test_video_insights_of_a_reel(sandbox: SandboxServer, http: requests.Session) -> None:
    reel = reels()[0]
    names = "blue_reels_play_count,post_impressions_unique,post_video_social_actions"
    names += ",post_video_likes_by_reaction_type"
    reply = http.get(graph(sandbox, f"{reel.video_id}/video_insights"), params={"metric": names})
    assert reply.status_code == 200
    values = {e["name"]: e["values"][0]["value"] for e in reply.json()["data"]}
    truth = data.metrics_for(reel, NOW.date(), CONFIG)
    assert values["blue_reels_play_count"] == truth.media_view
    assert values["post_impressions_unique"] == truth.media_view_unique
    social = {"COMMENT": truth.comments, "SHARE": truth.shares}
    assert values["post_video_social_actions"] == {k: v for k, v in social.items() if v}
    assert sum(values["post_video_likes_by_reaction_type"].values()) == truth.reactions_total
    assert sandbox.requests()[-1].page_ids == (PAGE,)
    bad = http.get(graph(sandbox, f"{reel.video_id}/video_insights"), params={"metric": "nope"})
    assert bad.status_code == 400 and "valid insights metric" in bad.json()["error"]["message"]


def test_the_client_measures_reels_from_video_insights_in_the_same_batch(
    sandbox: SandboxServer,
) -> None:
    client = fb_client(sandbox)
    listed = [
        item
        for offset in range(1, 6)
        for item in client.list_content(NOW.date() - dt.timedelta(days=offset))
    ]
    ids = [item.external_content_id for item in listed]
    calls = client.api_calls
    batch = client.fetch_content_metrics(ids, NOW.date())
    assert client.api_calls - calls == 1
    posts = {p.id: p for p in posts_of(5)}
    reel_rows = [m for m in batch.metrics if posts[m.external_content_id].format is PostFormat.REEL]
    assert reel_rows, "no reel in the window: widen it"
    last = sandbox.requests()[-1]
    assert last.batch_size == len(ids) + len(reel_rows)
    for metrics in batch.metrics:
        post = posts[metrics.external_content_id]
        truth = data.metrics_for(post, NOW.date(), CONFIG)
        assert (metrics.views, metrics.reach) == (truth.media_view, truth.media_view_unique)
        assert metrics.comments == truth.comments
        assert metrics.shares == (truth.shares or None)
        assert metrics.reactions == truth.reactions_total
    fresh = fb_client(sandbox)
    assert fresh.fetch_content_metrics(ids, NOW.date()).metrics == batch.metrics
    assert fresh.api_calls == 2  # reels recognised in the reply, then their video_insights


# --------------------------------------------------------------------------- page insights


def test_page_insights_end_at_pacific_midnight_across_dst(
    sandbox: SandboxServer, clock: FixedClock, http: requests.Session
) -> None:
    clock.set(dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC))
    since = dt.datetime(2026, 3, 7, tzinfo=dt.UTC)
    until = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    reply = http.get(
        graph(sandbox, f"{PAGE}/insights"),
        params={
            "metric": "page_media_view,page_daily_follows_unique",
            "period": "day",
            "since": str(ts(since)),
            "until": str(ts(until)),
        },
    )
    assert reply.status_code == 200
    body = reply.json()
    views = body["data"][0]
    assert [v["end_time"] for v in views["values"]] == [
        "2026-03-07T08:00:00+0000",
        "2026-03-08T08:00:00+0000",
        "2026-03-09T07:00:00+0000",  # daylight saving time began on 2026-03-08
    ]
    days = [dt.date(2026, 3, 6), dt.date(2026, 3, 7), dt.date(2026, 3, 8)]
    assert [v["value"] for v in views["values"]] == [
        data.page_day(PAGE, day, CONFIG).media_view for day in days
    ]
    assert "access_token" in body["paging"]["next"]  # as Graph does: clients must strip it


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC), dt.date(2026, 3, 8)),
        (NOW, dt.date(2026, 11, 19)),
    ],
)
def test_the_client_reads_the_right_pacific_day(
    sandbox: SandboxServer, clock: FixedClock, now: dt.datetime, day: dt.date
) -> None:
    clock.set(now)
    client = fb_client(sandbox)
    metrics = client.fetch_account_metrics(day, include_snapshot=True)
    world = data.page_day(PAGE, day, CONFIG)
    assert (metrics.views, metrics.reach) == (world.media_view, world.media_view_unique)
    assert (metrics.new_followers, metrics.profile_views) == (
        world.daily_follows_unique,
        world.views_total,
    )
    assert metrics.followers_total == data.page_followers(PAGE, now.date(), CONFIG)
    assert metrics.website_clicks is None and client.api_calls == 1


def test_deprecated_page_metrics_are_invalid(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    for metric in ("page_impressions", "page_fans", "page_impressions_unique"):
        reply = http.get(graph(sandbox, f"{PAGE}/insights"), params={"metric": metric})
        assert reply.status_code == 400
        assert (
            reply.json()["error"]["message"] == "(#100) The value must be a valid insights metric"
        )
    client = fb_client(sandbox, page_metrics=("page_fans", "page_media_view"))
    metrics = client.fetch_account_metrics(
        NOW.date() - dt.timedelta(days=2), include_snapshot=False
    )
    assert metrics.rejected_metrics == ("page_fans",) and metrics.views is not None


# --------------------------------------------------------------------------- faults


def test_account_keyed_faults_on_a_page(sandbox: SandboxServer, http: requests.Session) -> None:
    sandbox.faults.update(permission_denied_accounts=[PAGE])
    denied = http.get(graph(sandbox, f"{PAGE}/posts"))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == 200
    sandbox.faults.update(permission_denied_accounts=[], quota_exhausted_accounts=[PAGE])
    quota = http.get(graph(sandbox, f"{PAGE}/posts"))
    assert quota.status_code == 400 and quota.json()["error"]["code"] == 80001
    buc = json.loads(quota.headers["X-Business-Use-Case-Usage"])
    assert buc[PAGE][0]["estimated_time_to_regain_access"] == 360
    with pytest.raises(PlatformError) as raised:
        list(fb_client(sandbox).list_content(NOW.date()))
    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert raised.value.retry_after == 360 * 60
    assert [r.fault for r in sandbox.requests(PAGE)] == [
        "permission_denied",
        "quota_exhausted",
        "quota_exhausted",
    ]


def test_a_sunset_version_fails_every_call_and_names_the_setting(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    sandbox.faults.update(sunset_api_versions=["v24.0"])
    old = http.get(f"{sandbox.base_url}/v24.0/{PAGE}")
    assert old.status_code == 400 and old.json()["error"]["code"] == 2635
    assert http.get(graph(sandbox, PAGE)).status_code == 200
    client = fb_client(sandbox, api_version="v24.0")
    with pytest.raises(PlatformError) as raised:
        client.fetch_account_metrics(NOW.date(), include_snapshot=True)
    assert raised.value.error_class is ErrorClass.PERMANENT_CONFIG
    assert "ANALYTICS_FACEBOOK_API_VERSION" in raised.value.message


# --------------------------------------------------------------------------- instagram wire


def test_instagram_objects_share_the_graph_host(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    user = http.get(graph(sandbox, IG), params={"fields": "username,followers_count"}).json()
    assert user == {
        "username": igd.username(IG),
        "followers_count": igd.followers(IG, NOW.date(), CONFIG),
        "id": IG,
    }
    fields = "id,media_type,media_product_type,timestamp,children{media_type}"
    reply = http.get(graph(sandbox, f"{IG}/media"), params={"fields": fields, "limit": "50"})
    assert "X-Page-Usage" not in reply.headers  # Instagram has no page usage
    buc = json.loads(reply.headers["X-Business-Use-Case-Usage"])
    assert buc[IG][0]["type"] == "instagram"
    listed = reply.json()["data"]
    carousel = next(m for m in listed if m["media_type"] == "CAROUSEL_ALBUM")
    children = carousel["children"]["data"]
    assert 2 <= len(children) <= 6 and all("media_type" in c for c in children)
    child = children[0]["id"]
    assert igd.decode_media_id(child, CONFIG) is not None
    no_insights = http.get(graph(sandbox, f"{child}/insights"), params={"metric": "reach"})
    assert no_insights.status_code == 400
    assert all(igd.decode_media_id(m["id"], CONFIG) is not None for m in listed)
    assert [m["timestamp"] for m in listed] == sorted(
        (m["timestamp"] for m in listed), reverse=True
    )


def test_instagram_metric_rules(sandbox: SandboxServer, http: requests.Session) -> None:
    feed = next(
        m
        for offset in range(1, 20)
        for m in igd.media_for_day(IG, NOW.date() - dt.timedelta(days=offset), CONFIG)
        if m.shape is igd.Shape.IMAGE
    )
    for metric in ("impressions", "replies", "plays"):
        reply = http.get(graph(sandbox, f"{feed.id}/insights"), params={"metric": metric})
        assert reply.status_code == 400
        assert f"does not support the {metric} metric" in reply.json()["error"]["message"]
    series = http.get(
        graph(sandbox, f"{IG}/insights"), params={"metric": "profile_views", "period": "day"}
    )
    assert "metric_type=total_value" in series.json()["error"]["message"]
    old = http.get(
        graph(sandbox, f"{IG}/insights"),
        params={"metric": "impressions", "period": "day"},
    )
    assert "no longer supported" in old.json()["error"]["message"]


def test_a_mixed_batch_touches_both_accounts(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    post = posts_of()[0]
    media = igd.media_for_day(IG, NOW.date() - dt.timedelta(days=1), CONFIG)[0]
    batch = [
        {"method": "GET", "relative_url": f"{post.id}?fields=id"},
        {"method": "GET", "relative_url": f"{media.id}?fields=id,media_type"},
    ]
    reply = http.post(graph(sandbox, ""), data={"batch": json.dumps(batch)})
    assert reply.status_code == 200
    bodies = [json.loads(item["body"]) for item in reply.json()]
    assert bodies == [{"id": post.id}, {"id": media.id, "media_type": media.media_type}]
    assert sandbox.requests()[-1].page_ids == (PAGE, IG)
    sandbox.faults.expire_token(IG)
    assert http.post(graph(sandbox, ""), data={"batch": json.dumps(batch)}).status_code == 400


def test_ids_of_the_two_worlds_never_collide() -> None:
    assert not data.page_exists(IG, CONFIG)
    assert data.decode_video_id(IG, CONFIG) is None
    post = reels()[0]
    assert post.video_id is not None and igd.decode_media_id(post.video_id, CONFIG) is None
    assert data.decode_video_id(post.video_id, CONFIG) == post
    media = igd.media_for_day(IG, NOW.date(), CONFIG)[0]
    assert data.decode_video_id(media.id, CONFIG) is None
    assert igd.decode_media_id(media.id, CONFIG) == media
    other_user = igd.decode_media_id(media.id[:-1] + "9", CONFIG)  # the same slot of user ...9
    assert other_user is not None and other_user.user_id == IG[:-1] + "9"
    only_ig = SandboxConfig(posts_per_day=(2, 6), known_pages=frozenset({IG}))
    assert igd.decode_media_id(media.id, only_ig) == media
    assert igd.decode_media_id(media.id[:-1] + "9", only_ig) is None  # an unknown account
    assert igd.decode_media_id(media.id[:3] + "9999999" + media.id[10:], CONFIG) is None
