"""The Instagram client against the sandbox over real HTTP (127.0.0.1): what it lists and
measures matches the synthetic world, call counts, and every fault switch.

Expected values come from `sandbox.instagram_data` (the functions the sandbox answers with),
never from numbers written into the test.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from analytics_pipeline.platforms.base import Account, PlatformError, Secret
from analytics_pipeline.platforms.http import RetryConfig
from analytics_pipeline.platforms.instagram import InstagramClient, InstagramSettings
from analytics_pipeline.records import ContentFormat, ErrorClass
from analytics_sandbox import FixedClock, SandboxConfig, SandboxServer
from analytics_sandbox import instagram_data as igd

IG = "17841400000000001"
OTHER_IG = "17841400000000002"
TOKEN = "IGQVJsandboxTOKEN-4f1e2d"
CONFIG = SandboxConfig(posts_per_day=(2, 6))
NOW = dt.datetime(2026, 11, 20, 23, 0, tzinfo=dt.UTC)
FAST = RetryConfig(backoff_base_s=0.001, backoff_max_s=0.002, max_attempts=4)
ACCOUNT = Account("org-1", "int-ig", "instagram", IG, Secret(TOKEN))

_SHAPES = {
    igd.Shape.IMAGE: ContentFormat.POST,
    igd.Shape.CAROUSEL: ContentFormat.CAROUSEL,
    igd.Shape.VIDEO: ContentFormat.VIDEO,
    igd.Shape.REEL: ContentFormat.REEL,
    igd.Shape.STORY_IMAGE: ContentFormat.STORY,
    igd.Shape.STORY_VIDEO: ContentFormat.STORY,
}


def client_for(
    sandbox: SandboxServer,
    clock: FixedClock,
    waits: list[float] | None = None,
    *,
    account: Account = ACCOUNT,
    **settings: object,
) -> InstagramClient:
    config = InstagramSettings(base_url=sandbox.base_url, retry=FAST, **settings)  # type: ignore[arg-type]
    sleep = waits.append if waits is not None else (lambda _s: None)
    return InstagramClient(config, account, sleep=sleep, clock=clock)


def expected_day(day: dt.date, now: dt.datetime, user: str = IG) -> list[igd.IgMedia]:
    """What list_content(day) must return at `now`: the day's media, then its live stories."""
    media = [m for m in reversed(igd.media_for_day(user, day, CONFIG)) if m.timestamp <= now]
    stories = [s for s in reversed(igd.stories_for_day(user, day, CONFIG)) if s.is_live_story(now)]
    return media + stories


def truth(media: igd.IgMedia, now: dt.datetime) -> dict[str, int | None]:
    """The ContentMetrics columns the client must record for `media` at `now`."""
    if not igd.insights_ready(media, now) or igd.too_few_viewers(media, CONFIG):
        return dict.fromkeys(("views", "reach", "likes", "comments", "shares", "saves"))
    values = igd.media_insights(media, now, CONFIG)
    story = media.kind is igd.Kind.STORY
    return {
        "views": values["views"],
        "reach": values["reach"],
        "likes": None if story else values["likes"],
        "comments": values["replies"] if story else values["comments"],
        "shares": values["shares"],
        "saves": None if story else values["saved"],
    }


# --------------------------------------------------------------------------- content


def test_listing_matches_the_synthetic_world_with_live_stories(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    client = client_for(sandbox, clock)
    formats: set[ContentFormat] = set()
    for offset in range(0, 6):
        day = NOW.date() - dt.timedelta(days=offset)
        items = list(client.list_content(day))
        expected = expected_day(day, NOW)
        assert [i.external_content_id for i in items] == [m.id for m in expected]
        assert [i.format for i in items] == [_SHAPES[m.shape] for m in expected]
        assert [i.published_at for i in items] == [m.timestamp for m in expected]
        assert [i.caption for i in items] == [m.caption for m in expected]
        formats.update(i.format for i in items)
    assert {ContentFormat.REEL, ContentFormat.CAROUSEL, ContentFormat.POST} <= formats
    assert ContentFormat.STORY in formats, "no live story at NOW: move NOW"
    records = sandbox.requests()
    assert {r.page_ids for r in records} == {(IG,)}
    assert all(r.authorization_present and not r.access_token_in_query for r in records)
    assert all(TOKEN not in json.dumps(r.to_dict()) for r in records)


def test_metrics_match_the_world_in_one_batch_call(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    client = client_for(sandbox, clock)
    listed = [
        item
        for offset in range(0, 5)
        for item in client.list_content(NOW.date() - dt.timedelta(days=offset))
    ]
    ids = [item.external_content_id for item in listed]
    calls = client.api_calls
    batch = client.fetch_content_metrics(ids, NOW.date())
    assert client.api_calls - calls == 1
    assert [m.external_content_id for m in batch.metrics] == ids and batch.skipped == ()
    worlds = {m.id: m for m in (igd.decode_media_id(i, CONFIG) for i in ids) if m is not None}
    saw_zero = saw_null = False
    for metrics in batch.metrics:
        expected = truth(worlds[metrics.external_content_id], NOW)
        got = {name: getattr(metrics, name) for name in expected}
        assert got == expected, metrics.external_content_id
        assert metrics.reactions is None and metrics.impressions is None
        saw_zero |= 0 in got.values()
        saw_null |= None in got.values()
    assert saw_zero and saw_null, "the data set lacks a 0 or a NULL case: widen the days"

    fresh = client_for(sandbox, clock)  # listed by another run: types read first
    again = fresh.fetch_content_metrics(ids, NOW.date())
    assert again.metrics == batch.metrics and fresh.api_calls == 2


def _find_story(predicate: object, days: int = 60) -> igd.IgMedia:
    for offset in range(days):
        for story in igd.stories_for_day(IG, NOW.date() - dt.timedelta(days=offset), CONFIG):
            if predicate(story):  # type: ignore[operator]
                return story
    raise AssertionError("no such story in the synthetic world; widen the search")


def test_a_story_with_too_few_viewers_is_a_null_row_not_a_permission_error(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    story = _find_story(lambda s: igd.too_few_viewers(s, CONFIG))
    clock.set(story.timestamp + dt.timedelta(hours=3))
    client = client_for(sandbox, clock)
    listed = [i.external_content_id for i in client.list_content(story.day)]
    assert story.id in listed
    batch = client.fetch_content_metrics([story.id], story.day)
    assert batch.skipped == () and batch.metrics[0].null_count() == 10


def test_an_expired_story_is_not_asked(sandbox: SandboxServer, clock: FixedClock) -> None:
    story = _find_story(lambda s: not igd.too_few_viewers(s, CONFIG))
    clock.set(story.timestamp + dt.timedelta(hours=2))
    live = client_for(sandbox, clock).fetch_content_metrics([story.id], story.day)
    assert live.metrics[0].views == igd.media_insights(story, clock(), CONFIG)["views"]
    clock.set(story.timestamp + dt.timedelta(hours=25))
    client = client_for(sandbox, clock)
    expired = client.fetch_content_metrics([story.id], story.day)
    assert expired.metrics == () and expired.skipped == ()
    assert client.api_calls == 1  # the type read only: no insights call


def test_deleted_media_is_skipped_and_the_rest_lands(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    day = NOW.date() - dt.timedelta(days=2)
    media = igd.media_for_day(IG, day, CONFIG)
    assert len(media) >= 2
    sandbox.faults.delete_post(media[0].id)
    client = client_for(sandbox, clock)
    listed = [i.external_content_id for i in client.list_content(day)]
    assert media[0].id in listed  # still listed, like Graph after a delete
    batch = client.fetch_content_metrics(listed, day)
    assert [(s.external_content_id, s.code) for s in batch.skipped] == [(media[0].id, "100/33")]
    assert {m.external_content_id for m in batch.metrics} == set(listed) - {media[0].id}


def test_an_invalid_metric_is_dropped_and_the_rest_still_fetched(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    day = NOW.date() - dt.timedelta(days=3)
    sandbox.faults.invalid_metrics = {"saved"}
    client = client_for(sandbox, clock)
    ids = [i.external_content_id for i in client.list_content(day)]
    batch = client.fetch_content_metrics(ids, day)
    assert batch.rejected_metrics == ("saved",)
    assert len(batch.metrics) == len(ids)
    assert all(m.saves is None and m.views is not None for m in batch.metrics)


def test_null_batch_items_are_asked_again(sandbox: SandboxServer, clock: FixedClock) -> None:
    day = NOW.date() - dt.timedelta(days=1)
    client = client_for(sandbox, clock)
    ids = [i.external_content_id for i in client.list_content(day)]
    sandbox.faults.null_batch_items = 2
    calls = client.api_calls
    batch = client.fetch_content_metrics(ids, day)
    assert len(batch.metrics) == len(ids) and client.api_calls - calls == 2


# --------------------------------------------------------------------------- account


@pytest.mark.parametrize(
    ("now", "day"),
    [
        (NOW, NOW.date() - dt.timedelta(days=1)),  # standard time
        (dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC), dt.date(2026, 3, 8)),  # the DST day
    ],
)
def test_account_metrics_match_the_world_for_the_pacific_day(
    sandbox: SandboxServer, clock: FixedClock, now: dt.datetime, day: dt.date
) -> None:
    clock.set(now)
    client = client_for(sandbox, clock)
    metrics = client.fetch_account_metrics(day, include_snapshot=True)
    world = igd.account_day(IG, day, CONFIG)
    assert metrics.followers_total == igd.followers(IG, now.date(), CONFIG)
    assert (metrics.reach, metrics.new_followers) == (world.reach, world.follower_count)
    assert (metrics.profile_views, metrics.website_clicks, metrics.views) == (
        world.profile_views,
        world.website_clicks,
        world.views,
    )
    assert metrics.impressions is None and client.api_calls == 1


def test_follower_count_older_than_30_days_is_null_without_an_error(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    day = NOW.date() - dt.timedelta(days=45)
    metrics = client_for(sandbox, clock).fetch_account_metrics(day, include_snapshot=False)
    world = igd.account_day(IG, day, CONFIG)
    assert metrics.new_followers is None and metrics.followers_total is None
    assert metrics.reach == world.reach and metrics.views == world.views


# --------------------------------------------------------------------------- faults


def test_an_expired_token_stops_after_one_request(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    sandbox.faults.expire_token(IG)
    client = client_for(sandbox, clock)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(NOW.date()))
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert raised.value.code == "190/463" and sandbox.request_count(IG) == 1
    other = Account("org-1", "int-ig2", "instagram", OTHER_IG, Secret(TOKEN))
    assert isinstance(
        list(client_for(sandbox, clock, account=other).list_content(NOW.date())), list
    )


def test_a_missing_permission_is_a_credential_error(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    sandbox.faults.update(permission_denied_accounts=[IG])
    with pytest.raises(PlatformError) as raised:
        client_for(sandbox, clock).fetch_account_metrics(NOW.date(), include_snapshot=True)
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert (raised.value.code, raised.value.http_status) == ("10", 403)
    assert sandbox.request_count(IG) == 1


def test_transient_failures_are_retried_then_succeed(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    sandbox.faults.fail_next(IG, 3)
    client = client_for(sandbox, clock)
    items = list(client.list_content(NOW.date() - dt.timedelta(days=1)))
    assert [i.external_content_id for i in items] == [
        m.id for m in expected_day(NOW.date() - dt.timedelta(days=1), NOW)
    ]
    faults = [r.fault for r in sandbox.requests(IG)][:4]
    assert faults == [
        "transient:page_limit",
        "transient:server_error",
        "transient:unavailable",
        None,
    ]
    assert sandbox.requests(IG)[0].error_code == 4  # Instagram has no page-level limit


def test_a_used_up_quota_defers_without_sleeping(sandbox: SandboxServer, clock: FixedClock) -> None:
    sandbox.faults.update(quota_exhausted_accounts=[IG])
    waits: list[float] = []
    client = client_for(sandbox, clock, waits)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(NOW.date()))
    assert raised.value.error_class is ErrorClass.TRANSIENT and raised.value.code == "80002"
    assert raised.value.retry_after == 6 * 3600
    assert waits == [] and sandbox.request_count(IG) == 1


def test_a_sunset_version_is_a_config_error_naming_the_setting(
    sandbox: SandboxServer, clock: FixedClock
) -> None:
    sandbox.faults.update(sunset_api_versions=["v25.0"])
    client = client_for(sandbox, clock)
    with pytest.raises(PlatformError) as raised:
        client.fetch_account_metrics(NOW.date(), include_snapshot=False)
    assert raised.value.error_class is ErrorClass.PERMANENT_CONFIG
    assert "ANALYTICS_INSTAGRAM_API_VERSION" in raised.value.message
    newer = client_for(sandbox, clock, api_version="v26.0")
    assert newer.fetch_account_metrics(NOW.date() - dt.timedelta(1), include_snapshot=False)


def test_two_servers_answer_identically() -> None:
    clock = FixedClock(NOW)
    bodies = []
    for _ in range(2):
        with SandboxServer(clock=clock, config=CONFIG) as server:
            client = client_for(server, clock)
            day = NOW.date() - dt.timedelta(days=1)
            items = list(client.list_content(day))
            batch = client.fetch_content_metrics([i.external_content_id for i in items], day)
            bodies.append((items, batch))
    assert bodies[0] == bodies[1] and bodies[0][0]
