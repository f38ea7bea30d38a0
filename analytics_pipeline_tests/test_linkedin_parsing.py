"""LinkedIn client: parsing and classification against recorded payloads, Rest.li encoding,
listing end conditions, statistics chunking, the 12-month clamp and settings."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
import requests

from analytics_pipeline.platforms.base import Account, PlatformError, Secret
from analytics_pipeline.platforms.http import RetryConfig
from analytics_pipeline.platforms.linkedin import (
    POST_METRIC_COLUMNS,
    LinkedInClient,
    LinkedInSettings,
    classify_response,
    commentary_hashtags,
    create_session,
    detect_format,
    earliest_statistics_day,
    parse_post,
    parse_share_statistics,
    render_commentary,
    restli_encode,
    seconds_until_utc_midnight,
    time_interval,
)
from analytics_pipeline.records import ContentFormat, ErrorClass, ValueKind
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

PAYLOADS = Payloads("linkedin")
load = PAYLOADS.load
recorded = PAYLOADS.reply
ORG = "urn:li:organization:2000001"
TOKEN = "AQVlinkedinTOKEN0123456789abcdef"
DAY = dt.date(2026, 11, 20)
NOW = dt.datetime(2026, 11, 21, 6, 0, tzinfo=dt.UTC)
BASE = "https://api.linkedin.com"
DAY_MS = 1795132800000  # 2026-11-20T00:00:00Z

ACCOUNT = Account(
    organization_id="org-1",
    integration_id="int-li-1",
    platform="linkedin",
    external_account_id=ORG,
    token=Secret(TOKEN),
)


def response_of(reply: Reply, url: str = f"{BASE}/rest/posts") -> requests.Response:
    return _response_of(reply, url)


def make_client(
    *steps: Any,
    settings: LinkedInSettings | None = None,
    now: dt.datetime = NOW,
    account: Account = ACCOUNT,
) -> tuple[LinkedInClient, ScriptedAdapter, list[float]]:
    settings = settings or LinkedInSettings()
    waits: list[float] = []
    http, adapter = scripted_session(*steps)

    def clock() -> dt.datetime:
        return now

    session = create_session(settings, sleep=waits.append, http=http, clock=clock)
    return LinkedInClient(settings, account, session=session, clock=clock), adapter, waits


def raw_params(request: requests.PreparedRequest) -> dict[str, str]:
    """The query of a sent request, values as they travelled (still percent-encoded)."""
    query = urlsplit(request.url or "").query
    return dict(part.partition("=")[::2] for part in query.split("&") if part)


def assert_headers_and_no_token_leak(adapter: ScriptedAdapter) -> None:
    assert_token_only_in_header(adapter, TOKEN)
    for request in adapter.requests:
        assert request.headers["LinkedIn-Version"] == "202609"
        assert request.headers["X-Restli-Protocol-Version"] == "2.0.0"


def posts_page(
    elements: list[dict[str, Any]], *, start: int = 0, total: int | None = None
) -> Reply:
    paging: dict[str, Any] = {"start": start, "count": len(elements), "links": []}
    if total is not None:
        paging["total"] = total
    return Reply(200, {"paging": paging, "elements": elements})


def a_post(n: int, created: dt.datetime, **extra: Any) -> dict[str, Any]:
    ms = int(created.timestamp() * 1000)
    return {"id": f"urn:li:share:{7000 + n}", "createdAt": ms, "publishedAt": ms, **extra}


# --------------------------------------------------------------------------- posts


def test_posts_are_parsed_with_format_hashtags_caption_and_permalink() -> None:
    first, second, third = (parse_post(p) for p in load("posts_page1.json")["body"]["elements"])
    assert first.external_content_id == "urn:li:share:7396500000000000003"
    assert first.format is ContentFormat.POST
    assert first.published_at == dt.datetime(2026, 11, 20, 18, 30, 2, tzinfo=dt.UTC)
    assert first.caption == (
        "We are hiring! #Hiring #DataEngineering Apply via our careers page (link in bio)."
    )
    assert first.hashtags == ("hiring", "dataengineering")
    assert (
        first.permalink == "https://www.linkedin.com/feed/update/urn:li:share:7396500000000000003"
    )
    assert first.reference_type is None
    assert second.external_content_id == "urn:li:ugcPost:7396500000000000002"
    assert second.format is ContentFormat.VIDEO
    assert second.hashtags == ("productupdate",)
    # A plain `#testing` and the markup `{hashtag|\#|Testing}` are one tag; the URL's `#top`
    # fragment is not a tag.
    assert third.format is ContentFormat.LINK
    assert third.hashtags == ("testing",)


def test_every_content_variant_maps_to_a_format() -> None:
    posts = load("posts_formats.json")["body"]["elements"]
    formats = [detect_format(p) for p in posts]
    assert formats == [
        ContentFormat.TEXT,  # no content
        ContentFormat.POST,  # image
        ContentFormat.VIDEO,
        ContentFormat.CAROUSEL,  # document (PDF slides)
        ContentFormat.LINK,  # article
        ContentFormat.CAROUSEL,  # multiImage
        ContentFormat.TEXT,  # poll
        ContentFormat.TEXT,  # reshare without media
        ContentFormat.POST,  # reshare with its own image
        ContentFormat.POST,  # celebration
    ]
    items = [parse_post(p) for p in posts]
    assert [i.reference_type for i in items][7:9] == ["reshare", "reshare"]
    assert items[0].reference_type is None
    assert items[7].caption is None  # a plain repost has empty commentary: NULL, not ""


@pytest.mark.parametrize(
    ("commentary", "expected"),
    [
        ("{hashtag|\\#|Launch} and {hashtag|\\#|LAUNCH}", ("launch",)),
        ("plain #Summer and markup {hashtag|\\#|Winter}", ("summer", "winter")),
        ("glued{hashtag|\\#|Tag} still counts", ("tag",)),
        ("escaped \\#Typed tag", ("typed",)),
        ("@[Acme \\(EU\\)](urn:li:organization:1) no tags", ()),
        ("numbers {hashtag|\\#|2026} are not tags, C# is not", ()),
        ("{hashtag|#|Unescaped} older markup", ("unescaped",)),
        ("Straße {hashtag|\\#|Straße}", ("strasse",)),
        ("", ()),
        (None, ()),
    ],
)
def test_commentary_hashtags(commentary: str | None, expected: tuple[str, ...]) -> None:
    assert commentary_hashtags(commentary) == expected


def test_render_commentary_turns_markup_into_readable_text() -> None:
    text = "Hi @[Acme \\(EU\\)](urn:li:organization:1)! {hashtag|\\#|News} \\*bold\\* \\\\ done"
    assert render_commentary(text) == "Hi Acme (EU)! #News *bold* \\ done"


def test_list_content_pages_until_posts_are_older_than_the_day() -> None:
    client, adapter, _ = make_client(
        recorded("posts_page1.json"),
        recorded("posts_page2_last.json"),
        settings=LinkedInSettings(page_size=3),
    )
    items = list(client.list_content(DAY))
    assert [i.external_content_id for i in items] == [
        "urn:li:share:7396500000000000003",
        "urn:li:ugcPost:7396500000000000002",
        "urn:li:share:7396500000000000001",
        "urn:li:share:7396400000000000009",  # created on the 19th, scheduled for the 20th
    ]
    assert items[3].format is ContentFormat.CAROUSEL
    assert items[3].hashtags == ("webinar",)
    assert items[3].caption == "Scheduled: #Webinar next Thursday with Sandbox Partner"
    assert client.api_calls == 2  # the third post of page 2 was created two days before: stop
    first, second = (raw_params(r) for r in adapter.requests)
    assert urlsplit(adapter.requests[0].url or "").path == "/rest/posts"
    assert first == {
        "author": "urn%3Ali%3Aorganization%3A2000001",
        "q": "author",
        "count": "3",
        "start": "0",
        "sortBy": "CREATED",
    }
    assert second["start"] == "3"
    assert_headers_and_no_token_leak(adapter)


def test_without_created_slack_a_scheduled_post_is_missed() -> None:
    client, _, _ = make_client(
        recorded("posts_page1.json"),
        recorded("posts_page2_last.json"),
        settings=LinkedInSettings(page_size=3, created_slack_days=0),
    )
    ids = [i.external_content_id for i in client.list_content(DAY)]
    assert "urn:li:share:7396400000000000009" not in ids
    assert len(ids) == 3


def test_listing_stops_on_a_short_page() -> None:
    noon = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    client, _, _ = make_client(
        posts_page([a_post(1, noon), a_post(2, noon - dt.timedelta(hours=1))]),
        settings=LinkedInSettings(page_size=3),
    )
    assert len(list(client.list_content(DAY))) == 2
    assert client.api_calls == 1  # the adapter would fail on a second request


def test_listing_stops_when_paging_total_is_reached() -> None:
    noon = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    full = [a_post(n, noon - dt.timedelta(minutes=n)) for n in range(3)]
    client, _, _ = make_client(posts_page(full, total=3), settings=LinkedInSettings(page_size=3))
    assert len(list(client.list_content(DAY))) == 3
    assert client.api_calls == 1


def test_listing_stops_on_an_empty_page() -> None:
    client, _, _ = make_client(posts_page([]))
    assert list(client.list_content(DAY)) == []
    assert client.api_calls == 1


def _endless_page(request: requests.PreparedRequest) -> Reply:
    start = int(raw_params(request)["start"])
    noon = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    return posts_page([a_post(start + i, noon) for i in range(2)], start=start)


def test_pagination_cap_raises_instead_of_looping_forever() -> None:
    settings = LinkedInSettings(page_size=2, max_pages=3)
    client, _, _ = make_client(*[_endless_page] * 3, settings=settings)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE
    assert "max_pages=3" in raised.value.message
    assert client.api_calls == 3


def test_drafts_and_repeats_are_dropped() -> None:
    noon = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    posts = [
        a_post(1, noon, lifecycleState="PUBLISHED"),
        a_post(2, noon, lifecycleState="DRAFT"),
        a_post(1, noon),  # a repeat (the listing shifted between pages)
        a_post(3, noon, lifecycleState="PUBLISHED_EDITED"),
    ]
    client, _, _ = make_client(posts_page(posts))
    ids = [i.external_content_id for i in client.list_content(DAY)]
    assert ids == ["urn:li:share:7001", "urn:li:share:7003"]


@pytest.mark.parametrize(
    "post",
    [
        {"createdAt": 1795132800000},  # no id
        {"id": "7001", "createdAt": 1795132800000},  # not a URN
        {"id": "urn:li:share:7001"},  # no timestamps
        {"id": "urn:li:share:7001", "createdAt": "yesterday"},
        "not an object",
    ],
)
def test_malformed_posts_are_invalid_responses(post: Any) -> None:
    client, _, _ = make_client(Reply(200, {"paging": {}, "elements": [post]}))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE


def test_a_posts_reply_without_elements_is_invalid() -> None:
    client, _, _ = make_client(Reply(200, {"paging": {"start": 0}}))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE


def test_an_account_that_is_not_an_organization_urn_is_a_config_error() -> None:
    person = Account("o", "int-x", "linkedin", "urn:li:person:abc", Secret(TOKEN))
    client, adapter, _ = make_client(account=person)
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.PERMANENT_CONFIG
    assert adapter.requests == []


# --------------------------------------------------------------------------- post statistics

SHARE_3 = "urn:li:share:7396500000000000003"
UGC_2 = "urn:li:ugcPost:7396500000000000002"
SHARE_1 = "urn:li:share:7396500000000000001"
SHARE_GONE = "urn:li:share:7396500000000000004"


def test_post_statistics_are_daily_values_with_null_versus_zero() -> None:
    client, adapter, _ = make_client(recorded("share_statistics_posts_day.json"))
    batch = client.fetch_content_metrics([SHARE_3, UGC_2, SHARE_1, SHARE_GONE], DAY)
    by_id = {m.external_content_id: m for m in batch.metrics}
    assert list(by_id) == [SHARE_3, UGC_2, SHARE_1]
    busy, video, quiet = by_id[SHARE_3], by_id[UGC_2], by_id[SHARE_1]
    assert busy.value_kind is ValueKind.DAILY
    # The element of the previous day (impressionCount 99999) is ignored.
    assert (busy.impressions, busy.reach, busy.clicks, busy.likes) == (1203, 812, 37, 21)
    assert (busy.comments, busy.shares) == (3, 4)
    assert (busy.views, busy.reactions, busy.saves, busy.video_views) == (None,) * 4
    assert video.clicks is None  # LinkedIn left clickCount out: NULL, not 0
    assert video.comments == 0
    assert (quiet.impressions, quiet.reach, quiet.likes) == (0, 0, 0)  # a quiet day: real zeros
    assert [(s.external_content_id, s.code) for s in batch.skipped] == [
        (SHARE_GONE, "no_statistics")
    ]
    params = raw_params(adapter.requests[0])
    assert (
        urlsplit(adapter.requests[0].url or "").path == "/rest/organizationalEntityShareStatistics"
    )
    assert params["q"] == "organizationalEntity"
    assert params["organizationalEntity"] == "urn%3Ali%3Aorganization%3A2000001"
    assert params["shares"] == (
        "List(urn%3Ali%3Ashare%3A7396500000000000003,urn%3Ali%3Ashare%3A7396500000000000001,"
        "urn%3Ali%3Ashare%3A7396500000000000004)"
    )
    assert params["ugcPosts"] == "List(urn%3Ali%3AugcPost%3A7396500000000000002)"
    assert params["timeIntervals"] == (
        f"(timeRange:(start:{DAY_MS},end:{DAY_MS + 86_400_000}),timeGranularityType:DAY)"
    )
    assert_headers_and_no_token_leak(adapter)


def test_the_client_declares_per_day_content_metrics() -> None:
    assert LinkedInClient.content_metrics_are_lifetime is False


def _empty_statistics(request: requests.PreparedRequest) -> Reply:
    return Reply(200, {"paging": {"start": 0, "count": 10}, "elements": []})


@pytest.mark.parametrize(("count", "chunk"), [(120, 50), (50, 50), (7, 3), (1, 20)])
def test_statistics_are_chunked_ceil_n_over_chunk_size(count: int, chunk: int) -> None:
    calls = math.ceil(count / chunk)
    client, adapter, _ = make_client(
        *[_empty_statistics] * calls, settings=LinkedInSettings(stats_chunk_size=chunk)
    )
    ids = [f"urn:li:{'share' if n % 3 else 'ugcPost'}:{7_000_000 + n}" for n in range(count)]
    batch = client.fetch_content_metrics(ids, DAY)
    assert client.api_calls == calls
    sent = []
    for request in adapter.requests:
        params = raw_params(request)
        urns = [
            unquote(u)
            for name in ("shares", "ugcPosts")
            if name in params
            for u in params[name][len("List(") : -1].split(",")
        ]
        assert 0 < len(urns) <= chunk
        sent.extend(urns)
    assert sorted(sent) == sorted(ids)
    assert {s.external_content_id for s in batch.skipped} == set(ids)


def test_no_content_ids_means_no_call() -> None:
    client, adapter, _ = make_client()
    assert client.fetch_content_metrics([], DAY).metrics == ()
    assert adapter.requests == []


def test_non_post_urns_are_skipped_without_a_call() -> None:
    client, adapter, _ = make_client()
    batch = client.fetch_content_metrics(["urn:li:activity:1", "12345"], DAY)
    assert [s.code for s in batch.skipped] == ["unsupported_urn", "unsupported_urn"]
    assert adapter.requests == []


def test_a_day_older_than_twelve_months_is_clamped_without_a_call() -> None:
    client, adapter, _ = make_client(_empty_statistics)
    old = dt.date(2025, 11, 21)  # NOW is 2026-11-21: the same calendar day a year ago is out
    assert earliest_statistics_day(NOW.date()) == dt.date(2025, 11, 22)
    batch = client.fetch_content_metrics([SHARE_3], old)
    assert batch.metrics == () and batch.skipped == ()
    assert adapter.requests == []
    client.fetch_content_metrics([SHARE_3], old + dt.timedelta(days=1))
    assert len(adapter.requests) == 1  # the first day inside the window is asked


def test_a_future_day_is_clamped_without_a_call() -> None:
    client, adapter, _ = make_client()
    batch = client.fetch_content_metrics([SHARE_3], NOW.date() + dt.timedelta(days=1))
    assert batch.metrics == ()
    assert adapter.requests == []


@pytest.mark.parametrize(
    ("today", "earliest"),
    [
        (dt.date(2026, 11, 21), dt.date(2025, 11, 22)),
        (dt.date(2028, 2, 29), dt.date(2027, 3, 1)),
        (dt.date(2027, 1, 1), dt.date(2026, 1, 2)),
    ],
)
def test_earliest_statistics_day(today: dt.date, earliest: dt.date) -> None:
    assert earliest_statistics_day(today) == earliest


def test_post_metrics_setting_limits_the_columns_filled() -> None:
    settings = LinkedInSettings(post_metrics=("impressionCount", "commentCount"))
    client, _, _ = make_client(recorded("share_statistics_posts_day.json"), settings=settings)
    busy = client.fetch_content_metrics([SHARE_3], DAY).metrics[0]
    assert (busy.impressions, busy.comments) == (1203, 3)
    assert (busy.reach, busy.likes, busy.clicks, busy.shares) == (None, None, None, None)


def test_parse_share_statistics_null_versus_zero() -> None:
    assert parse_share_statistics({"impressionCount": 0, "likeCount": 5}) == {
        "impressions": 0,
        "reach": None,
        "clicks": None,
        "likes": 5,
        "comments": None,
        "shares": None,
    }
    assert set(parse_share_statistics(None).values()) == {None}
    assert parse_share_statistics({"impressionCount": "12"})["impressions"] is None


# --------------------------------------------------------------------------- account metrics


def test_account_metrics_from_recorded_replies() -> None:
    client, adapter, _ = make_client(
        recorded("network_size.json"),
        recorded("follower_statistics_day.json"),
        recorded("page_statistics_day.json"),
        recorded("share_statistics_org_day.json"),
    )
    metrics = client.fetch_account_metrics(DAY, include_snapshot=True)
    assert metrics.followers_total == 28411
    assert metrics.new_followers == 19  # organic 17 + paid 2
    assert metrics.profile_views == 0  # LinkedIn said 0
    assert (metrics.impressions, metrics.reach) == (5234, 3120)
    assert (metrics.views, metrics.website_clicks) == (None, None)
    paths = [urlsplit(r.url or "").path for r in adapter.requests]
    assert paths == [
        "/rest/networkSizes/urn%3Ali%3Aorganization%3A2000001",
        "/rest/organizationalEntityFollowerStatistics",
        "/rest/organizationPageStatistics",
        "/rest/organizationalEntityShareStatistics",
    ]
    assert raw_params(adapter.requests[0]) == {"edgeType": "COMPANY_FOLLOWED_BY_MEMBER"}
    assert raw_params(adapter.requests[2])["q"] == "organization"
    assert "shares" not in raw_params(adapter.requests[3])
    assert_headers_and_no_token_leak(adapter)


def test_account_metrics_without_snapshot_skip_network_size() -> None:
    client, adapter, _ = make_client(
        recorded("follower_statistics_day.json"),
        recorded("page_statistics_day.json"),
        recorded("share_statistics_org_day.json"),
    )
    metrics = client.fetch_account_metrics(DAY, include_snapshot=False)
    assert metrics.followers_total is None
    assert metrics.new_followers == 19
    assert len(adapter.requests) == 3


def test_account_metrics_outside_the_window_only_snapshot_the_total() -> None:
    client, adapter, _ = make_client(recorded("network_size.json"))
    metrics = client.fetch_account_metrics(dt.date(2025, 1, 1), include_snapshot=True)
    assert metrics.followers_total == 28411
    assert metrics.null_count() == 6
    assert len(adapter.requests) == 1


def test_account_metrics_missing_elements_are_null() -> None:
    other_day = {
        "timeRange": {"start": DAY_MS - 86_400_000, "end": DAY_MS},
        "followerGains": {"organicFollowerGain": 5, "paidFollowerGain": 0},
    }
    client, _, _ = make_client(
        Reply(200, {"elements": [other_day]}),  # only another day's bucket
        Reply(200, {"elements": []}),
        Reply(200, {"elements": [{"timeRange": {"start": DAY_MS}, "totalShareStatistics": {}}]}),
    )
    metrics = client.fetch_account_metrics(DAY, include_snapshot=False)
    assert metrics.null_count() == 7


def test_account_metrics_setting_limits_the_calls() -> None:
    settings = LinkedInSettings(account_metrics=("new_followers",))
    client, adapter, _ = make_client(recorded("follower_statistics_day.json"), settings=settings)
    metrics = client.fetch_account_metrics(DAY, include_snapshot=False)
    assert metrics.new_followers == 19 and metrics.impressions is None
    assert len(adapter.requests) == 1


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("name", "error_class", "code"),
    [
        ("error_401_expired.json", ErrorClass.PERMANENT_CREDENTIAL, "EXPIRED_ACCESS_TOKEN"),
        ("error_401_revoked.json", ErrorClass.PERMANENT_CREDENTIAL, "REVOKED_ACCESS_TOKEN"),
        ("error_403_access_denied.json", ErrorClass.PERMANENT_CREDENTIAL, "ACCESS_DENIED"),
        ("error_426_sunset_version.json", ErrorClass.PERMANENT_CONFIG, "NONEXISTENT_VERSION"),
        ("error_400_version_missing.json", ErrorClass.PERMANENT_CONFIG, "VERSION_MISSING"),
        ("error_429_daily_quota.json", ErrorClass.TRANSIENT, "daily_quota"),
        ("error_429_throttle.json", ErrorClass.TRANSIENT, "TOO_MANY_REQUESTS"),
        ("error_500.json", ErrorClass.TRANSIENT, "0"),
        ("error_503_html.json", ErrorClass.TRANSIENT, "http_503"),
        ("error_404_not_found.json", ErrorClass.PERMANENT_OBJECT, "RESOURCE_NOT_FOUND"),
        ("error_400_time_range.json", ErrorClass.INVALID_RESPONSE, "http_400"),
    ],
)
def test_recorded_errors_are_classified(name: str, error_class: ErrorClass, code: str) -> None:
    error = classify_response(response_of(recorded(name)), api_version="202609", now=NOW)
    assert error is not None
    assert error.error_class is error_class
    assert error.code == code


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        # The body's code wins over the HTTP status.
        ({"code": "EXPIRED_ACCESS_TOKEN", "status": 400}, 400, ErrorClass.PERMANENT_CREDENTIAL),
        ({"serviceErrorCode": 65601, "message": "revoked"}, 400, ErrorClass.PERMANENT_CREDENTIAL),
        ({"code": "NONEXISTENT_VERSION"}, 400, ErrorClass.PERMANENT_CONFIG),
        ({"code": "ACCESS_DENIED"}, 400, ErrorClass.PERMANENT_CREDENTIAL),
        (
            {"serviceErrorCode": 101, "message": "APPLICATION_AND_MEMBER DAY limit"},
            400,
            ErrorClass.TRANSIENT,
        ),
        # The status when the body has no code.
        ({"message": "Unauthorized"}, 401, ErrorClass.PERMANENT_CREDENTIAL),
        ({"message": "Forbidden"}, 403, ErrorClass.PERMANENT_CREDENTIAL),
        ({}, 426, ErrorClass.PERMANENT_CONFIG),
        ({"message": "busy"}, 504, ErrorClass.TRANSIENT),
        (
            {"message": "Invalid query parameters passed to request"},
            400,
            ErrorClass.INVALID_RESPONSE,
        ),
        ({"message": "gone"}, 410, ErrorClass.PERMANENT_OBJECT),
    ],
)
def test_classification_table(body: dict[str, Any], status: int, expected: ErrorClass) -> None:
    error = classify_response(response_of(Reply(status, body)), api_version="202609", now=NOW)
    assert error is not None and error.error_class is expected


def test_sunset_version_names_the_setting_and_is_not_retried() -> None:
    client, adapter, waits = make_client(recorded("error_426_sunset_version.json"))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    error = raised.value
    assert error.error_class is ErrorClass.PERMANENT_CONFIG
    assert "set ANALYTICS_LINKEDIN_API_VERSION to a supported YYYYMM version" in error.message
    assert "'202609'" in error.message
    assert error.http_status == 426
    assert len(adapter.requests) == 1 and waits == []


@pytest.mark.parametrize("name", ["error_401_expired.json", "error_403_access_denied.json"])
def test_credential_errors_are_not_retried(name: str) -> None:
    client, adapter, waits = make_client(recorded(name))
    with pytest.raises(PlatformError) as raised:
        client.fetch_content_metrics([SHARE_3], DAY)
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL
    assert len(adapter.requests) == 1 and waits == []


def test_daily_quota_defers_to_midnight_utc_without_sleeping() -> None:
    late_evening = dt.datetime(2026, 11, 21, 22, 0, tzinfo=dt.UTC)
    client, adapter, waits = make_client(recorded("error_429_daily_quota.json"), now=late_evening)
    with pytest.raises(PlatformError) as raised:
        client.fetch_content_metrics([SHARE_3], DAY)
    error = raised.value
    assert error.error_class is ErrorClass.TRANSIENT
    assert error.code == "daily_quota"
    assert error.retry_after == 7200.0  # two hours to 00:00 UTC: longer than max_wait_s
    assert "00:00 UTC" in error.message
    assert len(adapter.requests) == 1 and waits == []


def test_daily_quota_just_before_midnight_waits_for_the_reset_then_retries() -> None:
    almost = dt.datetime(2026, 11, 21, 23, 58, tzinfo=dt.UTC)
    client, adapter, waits = make_client(
        recorded("error_429_daily_quota.json"),
        recorded("share_statistics_posts_day.json"),
        now=almost,
    )
    batch = client.fetch_content_metrics([SHARE_3], DAY)
    assert [m.external_content_id for m in batch.metrics] == [SHARE_3]
    assert waits == [120.0]
    assert len(adapter.requests) == 2


def test_short_throttle_honours_retry_after_then_succeeds() -> None:
    client, _, waits = make_client(
        recorded("error_429_throttle.json"),
        recorded("error_500.json"),
        recorded("error_503_html.json"),
        recorded("share_statistics_posts_day.json"),
        settings=LinkedInSettings(retry=RetryConfig(backoff_base_s=0.5, backoff_max_s=1)),
    )
    batch = client.fetch_content_metrics([SHARE_3], DAY)
    assert len(batch.metrics) == 1
    assert waits[0] == 2.0  # Retry-After of the throttle
    assert len(waits) == 3 and all(0 <= w <= 1 for w in waits[1:])  # jittered backoff


def test_transient_errors_give_up_after_max_attempts() -> None:
    settings = LinkedInSettings(retry=RetryConfig(max_attempts=2, backoff_base_s=0))
    client, adapter, _ = make_client(
        recorded("error_500.json"), recorded("error_500.json"), settings=settings
    )
    with pytest.raises(PlatformError) as raised:
        client.fetch_account_metrics(DAY, include_snapshot=True)
    assert raised.value.error_class is ErrorClass.TRANSIENT
    assert len(adapter.requests) == 2


def test_a_200_that_is_not_json_is_invalid() -> None:
    client, _, _ = make_client(Reply(200, text="<html>maintenance</html>"))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert raised.value.error_class is ErrorClass.INVALID_RESPONSE
    assert "maintenance" in raised.value.message


def test_error_messages_are_redacted() -> None:
    body = {
        "status": 401,
        "code": "INVALID_ACCESS_TOKEN",
        "message": f"Invalid token Bearer {TOKEN} in https://x?access_token={TOKEN}",
    }
    client, _, _ = make_client(Reply(401, body))
    with pytest.raises(PlatformError) as raised:
        list(client.list_content(DAY))
    assert TOKEN not in str(raised.value)
    assert TOKEN not in repr(raised.value.args)
    assert raised.value.error_class is ErrorClass.PERMANENT_CREDENTIAL


def test_seconds_until_utc_midnight() -> None:
    assert seconds_until_utc_midnight(dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC)) == 3600
    assert seconds_until_utc_midnight(dt.datetime(2026, 11, 21, 0, 0, tzinfo=dt.UTC)) == 86_400
    eastern = dt.timezone(dt.timedelta(hours=-5))
    assert seconds_until_utc_midnight(dt.datetime(2026, 11, 21, 18, 0, tzinfo=eastern)) == 3600


# --------------------------------------------------------------------------- Rest.li, settings


def test_restli_encoding() -> None:
    assert restli_encode("urn:li:share:1") == "urn%3Ali%3Ashare%3A1"
    assert restli_encode(["a,b", "c(d)"]) == "List(a%2Cb,c%28d%29)"
    assert restli_encode({"k": {"n": 5}, "flag": True}) == "(k:(n:5),flag:true)"
    assert restli_encode([]) == "List()"
    with pytest.raises(TypeError):
        restli_encode(1.5)
    assert time_interval(DAY) == {
        "timeRange": {"start": DAY_MS, "end": DAY_MS + 86_400_000},
        "timeGranularityType": "DAY",
    }


def test_settings_from_env_defaults_and_overrides() -> None:
    default = settings_from_env("linkedin", {})
    assert default.base_url == "https://api.linkedin.com"
    assert default.api_version == "202609"
    assert default.post_metrics == tuple(POST_METRIC_COLUMNS)
    assert default.api_root == "https://api.linkedin.com/rest"
    custom = settings_from_env(
        "linkedin",
        {
            "ANALYTICS_LINKEDIN_BASE_URL": "http://127.0.0.1:8765/",
            "ANALYTICS_LINKEDIN_API_VERSION": "202610",
            "ANALYTICS_LINKEDIN_POST_METRICS": "impressionCount, likeCount",
            "ANALYTICS_LINKEDIN_ACCOUNT_METRICS": "new_followers",
            "ANALYTICS_LINKEDIN_STATS_CHUNK_SIZE": "20",
            "ANALYTICS_LINKEDIN_PAGE_SIZE": "100",
            "ANALYTICS_HTTP_MAX_ATTEMPTS": "2",
        },
    )
    assert custom.api_root == "http://127.0.0.1:8765/rest"
    assert custom.api_version == "202610"
    assert custom.post_metrics == ("impressionCount", "likeCount")
    assert custom.account_metrics == ("new_followers",)
    assert (custom.stats_chunk_size, custom.page_size) == (20, 100)
    assert custom.retry.max_attempts == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ANALYTICS_LINKEDIN_API_VERSION", "v2"),
        ("ANALYTICS_LINKEDIN_API_VERSION", "202613"),
        ("ANALYTICS_LINKEDIN_API_VERSION", "2026-09"),
        ("ANALYTICS_LINKEDIN_BASE_URL", "api.linkedin.com"),
        ("ANALYTICS_LINKEDIN_POST_METRICS", "impressionCount,viewCount"),
        ("ANALYTICS_LINKEDIN_ACCOUNT_METRICS", "followers_total"),
        ("ANALYTICS_LINKEDIN_STATS_CHUNK_SIZE", "101"),
        ("ANALYTICS_LINKEDIN_PAGE_SIZE", "0"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        settings_from_env("linkedin", {name: value})


def test_settings_validation() -> None:
    assert LinkedInSettings(api_version="202609.01").api_version == "202609.01"
    with pytest.raises(ValueError):
        LinkedInSettings(stats_chunk_size=0)
    with pytest.raises(ValueError):
        LinkedInSettings(api_version="2026")
    with pytest.raises(ValueError):
        LinkedInSettings(post_metrics=("views",))
