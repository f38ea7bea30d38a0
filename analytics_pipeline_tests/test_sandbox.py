"""The Graph sandbox over real HTTP (127.0.0.1 only): wire format, determinism, fault switches."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from analytics_sandbox import FaultState, FixedClock, SandboxConfig, SandboxServer, data
from analytics_sandbox.data import PostFormat, SyntheticPost

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
PAGE = "1000001"
OTHER_PAGE = "1000002"
TOKEN = "sandbox-test-token-value"
CONFIG = SandboxConfig(posts_per_day=(2, 6))
BATCH_FIELDS = "shares,comments.summary(true).limit(0),insights.metric(post_media_view,post_clicks)"


# --- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def anon() -> Iterator[requests.Session]:
    """A client without credentials (admin endpoints, auth failures)."""
    with requests.Session() as session:
        yield session


def ts(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def q(**params: object) -> dict[str, str]:
    """Query parameters as strings (what goes on the wire anyway)."""
    return {key: str(value) for key, value in params.items()}


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def window_posts(page: str = PAGE, days: int = 10) -> list[SyntheticPost]:
    """Posts of the `days` full days before NOW's date, newest first (what a listing returns)."""
    posts: list[SyntheticPost] = []
    for offset in range(1, days + 1):
        posts.extend(data.posts_for_day(page, NOW.date() - dt.timedelta(days=offset), CONFIG))
    return sorted(posts, key=SyntheticPost.sort_key, reverse=True)


def find_post(predicate: Callable[[SyntheticPost], bool], days: int = 30) -> SyntheticPost:
    for post in window_posts(days=days):
        if predicate(post):
            return post
    raise AssertionError("no synthetic post matches; widen the search")


def posts_url(sandbox: SandboxServer, page: str = PAGE, version: str = "v25.0") -> str:
    return f"{sandbox.base_url}/{version}/{page}/posts"


def graph_error(response: requests.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def run_batch(
    http: requests.Session, sandbox: SandboxServer, relative_urls: list[str]
) -> list[dict[str, Any] | None]:
    batch = [{"method": "GET", "relative_url": url} for url in relative_urls]
    reply = http.post(
        f"{sandbox.base_url}/v25.0/",
        data={"batch": json.dumps(batch), "include_headers": "false"},
    )
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any] | None] = reply.json()
    return items


def item_body(item: dict[str, Any] | None) -> dict[str, Any]:
    assert item is not None
    assert isinstance(item["body"], str)  # Graph sends each body as a JSON *string*
    body: dict[str, Any] = json.loads(item["body"])
    return body


def without_token(url: str) -> str:
    """A `paging.next` URL minus its access_token (our client sends the token as a header)."""
    parts = urlsplit(url)
    query = [
        f"{key}={value}"
        for key, values in parse_qs(parts.query, keep_blank_values=True).items()
        for value in values
        if key != "access_token"
    ]
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{'&'.join(query)}"


# --- listing -----------------------------------------------------------------------------------


def test_listing_paginates_until_next_is_absent(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    since, until = midnight(NOW.date() - dt.timedelta(days=10)), midnight(NOW.date())
    params = q(fields="id,created_time", since=ts(since), until=ts(until), limit=4)
    url: str | None = posts_url(sandbox)
    pages: list[dict[str, Any]] = []
    while url is not None:
        reply = http.get(url, params=params if not pages else None)
        assert reply.status_code == 200, reply.text
        pages.append(reply.json())
        next_url = pages[-1]["paging"].get("next")
        if next_url is not None:
            query = parse_qs(urlsplit(next_url).query)
            assert query["access_token"] == [TOKEN]  # exactly like Graph's next links
            assert query["fields"] == ["id,created_time"]
            assert query["since"] == [str(ts(since))] and query["until"] == [str(ts(until))]
            assert query["after"] == [pages[-1]["paging"]["cursors"]["after"]]
            assert query["limit"] == ["4"]
        url = None if next_url is None else without_token(next_url)

    expected = window_posts()
    assert len(pages) == -(-len(expected) // 4) >= 3
    listed = [post for page in pages for post in page["data"]]
    assert [post["id"] for post in listed] == [post.id for post in expected]
    assert [post["created_time"] for post in listed] == sorted(
        (post["created_time"] for post in listed), reverse=True
    )
    last_paging = pages[-1]["paging"]
    assert "next" not in last_paging
    assert set(last_paging["cursors"]) == {"before", "after"}
    assert not any(record.access_token_in_query for record in sandbox.requests())
    assert all(record.authorization_present for record in sandbox.requests())


def test_following_next_verbatim_is_recorded_and_redacted(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    first = http.get(posts_url(sandbox), params={"limit": 2}).json()
    http.get(first["paging"]["next"])
    records = sandbox.requests()
    assert [record.access_token_in_query for record in records] == [False, True]
    log_text = json.dumps(http.get(f"{sandbox.base_url}/_sandbox/requests").json())
    assert TOKEN not in log_text
    assert "access_token=%2A%2A%2A" in records[1].query


def test_the_request_count_endpoint_counts_the_log(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    http.get(posts_url(sandbox), params={"limit": 2})
    http.get(posts_url(sandbox), params={"limit": 2})
    count = http.get(f"{sandbox.base_url}/_sandbox/requests/count").json()
    assert count == {"count": 2} == {"count": sandbox.request_count()}
    other = http.get(f"{sandbox.base_url}/_sandbox/requests/count", params={"page_id": "0"})
    assert other.json() == {"count": 0}


def test_listing_window_is_half_open(sandbox: SandboxServer, http: requests.Session) -> None:
    post = window_posts()[3]
    created = ts(post.created_time)

    def ids(since: int, until: int) -> list[str]:
        reply = http.get(posts_url(sandbox), params=q(fields="id", since=since, until=until))
        assert reply.status_code == 200, reply.text
        return [item["id"] for item in reply.json()["data"]]

    assert ids(created, created + 1) == [post.id]
    assert ids(created + 1, created + 60) == []
    assert ids(created - 60, created) == []


def test_listing_hides_posts_published_after_now(
    sandbox: SandboxServer, http: requests.Session, clock: FixedClock
) -> None:
    today = data.posts_for_day(PAGE, NOW.date(), CONFIG)
    cut = today[0].created_time + dt.timedelta(seconds=1)  # only the first post exists yet
    clock.set(cut)
    reply = http.get(posts_url(sandbox), params=q(fields="id", since=ts(midnight(NOW.date()))))
    assert [item["id"] for item in reply.json()["data"]] == [today[0].id]
    assert len(today) >= 2
    later = http.get(f"{sandbox.base_url}/v25.0/{today[1].id}")
    assert later.status_code == 400 and graph_error(later)["error_subcode"] == 33


def test_fields_filtering_and_attachment_subselection(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    expected = window_posts(days=20)
    fields = "created_time,permalink_url,status_type,attachments{media_type,subattachments{url}}"
    since, until = midnight(NOW.date() - dt.timedelta(days=20)), midnight(NOW.date())
    params = q(fields=fields, since=ts(since), until=ts(until), limit=100)
    listed = http.get(posts_url(sandbox), params=params)
    assert listed.status_code == 200
    by_id = {item["id"]: item for item in listed.json()["data"]}
    assert len(by_id) == len(expected) < 100
    for post in expected:
        item = by_id[post.id]
        assert set(item) - {"attachments"} == {"created_time", "permalink_url", "status_type", "id"}
        assert ("/reel/" in item["permalink_url"]) is (post.format is PostFormat.REEL)
        if post.format is PostFormat.TEXT:
            assert "attachments" not in item and item["status_type"] == "mobile_status_update"
            continue
        (attachment,) = item["attachments"]["data"]
        if post.format is PostFormat.ALBUM:
            children = attachment["subattachments"]["data"]
            assert len(children) >= 2 and all(set(child) == {"url"} for child in children)
            assert set(attachment) == {"media_type", "subattachments"}
        else:
            assert set(attachment) == {"media_type"}
    assert {post.format for post in expected} == set(PostFormat)


def test_default_and_unknown_fields(sandbox: SandboxServer, http: requests.Session) -> None:
    reply = http.get(posts_url(sandbox), params={"since": ts(NOW - dt.timedelta(days=3))})
    for item in reply.json()["data"]:
        assert {"id", "created_time"} <= set(item) <= {"id", "created_time", "message"}
    bad = http.get(posts_url(sandbox), params={"fields": "id,impressions"})
    assert bad.status_code == 400
    assert graph_error(bad)["code"] == 100
    assert "nonexisting field (impressions)" in graph_error(bad)["message"]
    bad_sub = http.get(posts_url(sandbox), params={"fields": "attachments{media_type,colour}"})
    assert bad_sub.status_code == 400 and "StoryAttachment" in graph_error(bad_sub)["message"]


def test_unknown_page_is_graph_method_exception(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    reply = http.get(posts_url(sandbox, page="not-a-page"))
    assert reply.status_code == 400
    error = graph_error(reply)
    assert (error["type"], error["code"], error["error_subcode"]) == (
        "GraphMethodException",
        100,
        33,
    )
    assert "Object with ID 'not-a-page' does not exist" in error["message"]
    assert error["fbtrace_id"]


def test_known_pages_can_be_configured() -> None:
    config = SandboxConfig(known_pages=frozenset({"42"}))
    assert data.page_exists("42", config) and not data.page_exists(PAGE, config)
    assert data.page_exists(PAGE) and not data.page_exists("12a")
    assert data.posts_for_day(PAGE, NOW.date(), config) == []


def test_version_segment(sandbox: SandboxServer, http: requests.Session) -> None:
    for version in ("v24.0", "v26.0"):
        reply = http.get(posts_url(sandbox, version=version), params={"limit": 1})
        assert reply.status_code == 200
        assert reply.headers["facebook-api-version"] == version
    assert http.get(posts_url(sandbox, version="25.0")).status_code == 404


# --- determinism and synthetic data ------------------------------------------------------------


def _transcript(sandbox: SandboxServer, post_ids: list[str]) -> list[str]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        fields = "id,created_time,message,attachments,insights.metric(post_media_view)"
        params = q(fields=fields, since=ts(NOW - dt.timedelta(days=7)), limit=5)
        listing = session.get(posts_url(sandbox), params=params).text
        batch = [
            {"method": "GET", "relative_url": f"{pid}?fields={BATCH_FIELDS}"} for pid in post_ids
        ]
        reply = session.post(f"{sandbox.base_url}/v25.0/", data={"batch": json.dumps(batch)}).text
    escaped_base = sandbox.base_url.replace("/", "\\/")
    return [text.replace(escaped_base, "BASE") for text in (listing, reply)]


def test_two_servers_answer_identically() -> None:
    post_ids = [post.id for post in window_posts()[:5]]
    with (
        SandboxServer(clock=FixedClock(NOW), config=CONFIG) as first,
        SandboxServer(clock=FixedClock(NOW), config=CONFIG) as second,
    ):
        assert first.base_url != second.base_url
        one, two = _transcript(first, post_ids), _transcript(second, post_ids)
    assert one == two
    assert "post_media_view" in one[0] and '"code":200' in one[1]


def test_synthetic_posts_are_well_formed() -> None:
    days = [NOW.date() - dt.timedelta(days=offset) for offset in range(60)]
    posts = [post for day in days for post in data.posts_for_day(PAGE, day, CONFIG)]
    for day in days:
        of_day = data.posts_for_day(PAGE, day, CONFIG)
        assert 2 <= len(of_day) <= 6
        assert all(post.created_time.date() == day for post in of_day)
        assert len({post.created_time for post in of_day}) == len(of_day)
    assert all(data.decode_post_id(post.id, CONFIG) == post for post in posts)
    assert data.posts_for_day(PAGE, days[0], CONFIG) != data.posts_for_day(
        OTHER_PAGE, days[0], CONFIG
    )
    captions = [post.message for post in posts]
    assert None in captions  # some photos/reels have no text at all
    tag_lists = [[word for word in (c or "").split() if word.startswith("#")] for c in captions]
    assert any(len(tags) == 0 for tags in tag_lists)
    assert max(len(tags) for tags in tag_lists) == 3
    assert any(
        len({tag.lower() for tag in tags}) < len(tags) and len(set(tags)) == len(tags)
        for tags in tag_lists
    )  # e.g. "#Launch ... #launch"


@pytest.mark.parametrize(
    "post_id",
    ["1000001", "1000001_", "1000001_1", "abc_12345678901234", "1000001_99999999999999"],
)
def test_decode_rejects_ids_that_were_never_published(post_id: str) -> None:
    assert data.decode_post_id(post_id, CONFIG) is None


def test_decode_rejects_an_index_past_the_days_posts() -> None:
    post = window_posts()[0]
    count = data.post_count(PAGE, post.created_time.date(), CONFIG)
    forged = f"{post.id[:-3]}{count:03d}"
    assert data.decode_post_id(forged, CONFIG) is None


def test_lifetime_metrics_grow_with_age_and_depend_on_the_date_only() -> None:
    posts = window_posts(days=3)
    start = NOW.date()
    for post in posts:
        series = [data.metrics_for(post, start + dt.timedelta(days=i), CONFIG) for i in range(10)]
        for earlier, later in itertools.pairwise(series):
            assert later.media_view >= earlier.media_view
            assert later.media_view_unique >= earlier.media_view_unique
            assert later.clicks >= earlier.clicks and later.shares >= earlier.shares
            assert later.comments >= earlier.comments
            assert all(later.reactions.get(k, 0) >= v for k, v in earlier.reactions.items())
        assert series[-1].media_view > series[0].media_view
        assert series[0] == data.metrics_for(post, start, CONFIG)
        assert (series[0].video_views is None) is (not post.is_video)


# --- single objects, batches, insights ---------------------------------------------------------


def test_single_object_read_matches_batch_item(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    post = window_posts()[0]
    single = http.get(f"{sandbox.base_url}/v25.0/{post.id}", params={"fields": BATCH_FIELDS})
    assert single.status_code == 200
    (item,) = run_batch(http, sandbox, [f"{post.id}?fields={BATCH_FIELDS}"])
    assert item is not None and item["code"] == 200
    assert single.json() == item_body(item)
    assert item_body(item)["id"] == post.id
    page = http.get(f"{sandbox.base_url}/v25.0/{PAGE}", params={"fields": "name,followers_count"})
    assert page.json()["id"] == PAGE and page.json()["followers_count"] > 0


def test_batch_mixes_success_deleted_and_null_items(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    posts = window_posts()[:4]
    sandbox.faults.delete_post(posts[2].id)
    sandbox.faults.null_batch_items = 1
    items = run_batch(http, sandbox, [f"{post.id}?fields={BATCH_FIELDS}" for post in posts])
    assert items[0] is None  # not processed: the client must retry it
    assert [item["code"] for item in items[1:] if item] == [200, 400, 200]
    deleted = item_body(items[2])["error"]
    assert (deleted["code"], deleted["error_subcode"]) == (100, 33)
    assert posts[2].id in deleted["message"]
    for item, post in ((items[1], posts[1]), (items[3], posts[3])):
        body = item_body(item)
        metrics = data.metrics_for(post, NOW.date(), CONFIG)
        assert body["id"] == post.id
        assert body["comments"] == {
            "data": [],
            "summary": {
                "order": "chronological",
                "total_count": metrics.comments,
                "can_comment": True,
            },
        }
        insights = {entry["name"]: entry for entry in body["insights"]["data"]}
        assert insights["post_media_view"]["values"] == [{"value": metrics.media_view}]
        assert insights["post_clicks"]["period"] == "lifetime"
        assert insights["post_clicks"]["id"] == f"{post.id}/insights/post_clicks/lifetime"
    # the null switch is used up; the deleted post is still listed, as it was yesterday
    again = run_batch(http, sandbox, [f"{posts[0].id}?fields=id"])
    assert again[0] is not None and again[0]["code"] == 200
    listed = http.get(posts_url(sandbox), params=q(fields="id", since=ts(NOW) - 86400 * 10))
    assert posts[2].id in [item["id"] for item in listed.json()["data"]]


def test_batch_items_carry_headers_unless_disabled(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    post = window_posts()[0]
    batch = json.dumps([{"method": "GET", "relative_url": f"v24.0/{post.id}?fields=id"}])
    (item,) = http.post(f"{sandbox.base_url}/v25.0", data={"batch": batch}).json()
    names = {header["name"]: header["value"] for header in item["headers"]}
    assert names["facebook-api-version"] == "v24.0"
    (bare,) = http.post(
        f"{sandbox.base_url}/v25.0/", data={"batch": batch, "include_headers": "false"}
    ).json()
    assert set(bare) == {"code", "body"}


def test_invalid_or_deprecated_metric_fails_the_whole_item(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    post = window_posts()[0]
    items = run_batch(
        http,
        sandbox,
        [
            f"{post.id}?fields=shares,insights.metric(post_media_view,post_impressions)",
            f"{post.id}?fields=insights.metric(post_media_view)",
        ],
    )
    assert items[0] is not None and items[0]["code"] == 400
    error = item_body(items[0])["error"]
    assert error == {
        "message": "(#100) The value must be a valid insights metric",
        "type": "OAuthException",
        "code": 100,
        "fbtrace_id": error["fbtrace_id"],
    }
    assert items[1] is not None and items[1]["code"] == 200

    sandbox.faults.invalid_metrics = {"post_clicks"}
    flagged = run_batch(
        http,
        sandbox,
        [f"{post.id}?fields=insights.metric(post_clicks)", f"{post.id}?fields=insights"],
    )
    assert [item["code"] for item in flagged if item] == [400, 400]  # default set includes it
    listing = http.get(posts_url(sandbox), params={"fields": "insights.metric(post_clicks)"})
    assert listing.status_code == 400 and graph_error(listing)["code"] == 100
    fine = run_batch(http, sandbox, [f"{post.id}?fields=insights.metric(post_media_view)"])
    assert fine[0] is not None and fine[0]["code"] == 200


def test_shares_absent_at_zero_and_zero_clicks_reported(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    def metrics(post: SyntheticPost) -> data.PostMetrics:
        return data.metrics_for(post, NOW.date(), CONFIG)

    unshared = find_post(lambda p: metrics(p).shares == 0 and metrics(p).clicks == 0)
    shared = find_post(lambda p: metrics(p).shares > 0)
    fields = "shares,insights.metric(post_clicks)"
    items = run_batch(
        http, sandbox, [f"{unshared.id}?fields={fields}", f"{shared.id}?fields={fields}"]
    )
    zero, nonzero = item_body(items[0]), item_body(items[1])
    assert "shares" not in zero
    assert zero["insights"]["data"][0]["values"] == [{"value": 0}]  # a real zero, not missing
    assert nonzero["shares"] == {"count": metrics(shared).shares}


def test_video_views_and_reactions_by_type(sandbox: SandboxServer, http: requests.Session) -> None:
    fields = "insights.metric(post_video_views,post_reactions_by_type_total)"
    window = q(fields=fields, since=ts(NOW) - 86400 * 10, until=ts(midnight(NOW.date())))
    reply = http.get(posts_url(sandbox), params=window)
    formats = {post.id: post for post in window_posts()}
    seen_video = seen_other = False
    for item in reply.json()["data"]:
        names = [entry["name"] for entry in item["insights"]["data"]]
        if formats[item["id"]].is_video:
            seen_video = True
            assert names == ["post_video_views", "post_reactions_by_type_total"]
        else:
            seen_other = True
            assert names == ["post_reactions_by_type_total"]
        reactions = item["insights"]["data"][-1]["values"][0]["value"]
        assert isinstance(reactions, dict) and all(v > 0 for v in reactions.values())
    assert seen_video and seen_other


def test_insights_empty_for_posts_younger_than_an_hour(
    sandbox: SandboxServer, http: requests.Session, clock: FixedClock
) -> None:
    post = window_posts()[0]
    url = f"{sandbox.base_url}/v25.0/{post.id}"
    clock.set(post.created_time + dt.timedelta(minutes=30))
    young = http.get(url, params={"fields": "insights.metric(post_media_view)"})
    assert young.json()["insights"] == {"data": []}
    clock.set(post.created_time + dt.timedelta(minutes=61))
    ready = http.get(url, params={"fields": "insights.metric(post_media_view)"})
    assert len(ready.json()["insights"]["data"]) == 1


def test_metric_values_follow_the_observation_date(
    sandbox: SandboxServer, http: requests.Session, clock: FixedClock
) -> None:
    post = window_posts()[0]
    url = f"{sandbox.base_url}/v25.0/{post.id}"
    params = {"fields": "insights.metric(post_media_view)"}

    def views() -> int:
        value: int = http.get(url, params=params).json()["insights"]["data"][0]["values"][0][
            "value"
        ]
        return value

    morning = views()
    clock.set(NOW + dt.timedelta(hours=11))  # same UTC date
    assert views() == morning
    clock.set(NOW + dt.timedelta(days=3))
    assert views() > morning


def test_batch_with_more_than_50_items_is_rejected(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    post = window_posts()[0]
    items = [{"method": "GET", "relative_url": f"{post.id}?fields=id"}] * 51
    reply = http.post(f"{sandbox.base_url}/v25.0/", data={"batch": json.dumps(items)})
    assert reply.status_code == 400
    assert reply.json() == {
        "error": {
            "message": "(#1) Too many requests in batch message. Maximum batch size is 50",
            "type": "OAuthException",
            "code": 1,
            "fbtrace_id": reply.json()["error"]["fbtrace_id"],
        }
    }
    assert len(run_batch(http, sandbox, [f"{post.id}?fields=id"] * 50)) == 50


# --- auth and fault switches -------------------------------------------------------------------


def test_token_only_accepted_from_the_authorization_header(
    sandbox: SandboxServer, anon: requests.Session
) -> None:
    anonymous = anon.get(posts_url(sandbox))
    in_query = anon.get(posts_url(sandbox), params={"access_token": TOKEN})
    for reply in (anonymous, in_query):
        assert reply.status_code == 400
        assert (graph_error(reply)["code"], graph_error(reply)["type"]) == (190, "OAuthException")
    records = sandbox.requests()
    assert [(r.authorization_present, r.access_token_in_query) for r in records] == [
        (False, False),
        (False, True),
    ]
    assert all(TOKEN not in json.dumps(record.to_dict()) for record in records)


def test_a_token_in_a_post_body_is_flagged_too(
    sandbox: SandboxServer, anon: requests.Session
) -> None:
    batch = json.dumps([{"method": "GET", "relative_url": "1000001_1?fields=id"}])
    anon.post(f"{sandbox.base_url}/v25.0/", data={"batch": batch, "access_token": TOKEN})
    (record,) = sandbox.requests()
    assert record.access_token_in_query and not record.authorization_present
    assert TOKEN not in json.dumps(record.to_dict())


def test_expired_token_fails_every_call_touching_the_page(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    sandbox.faults.expire_token(PAGE)
    listing = http.get(posts_url(sandbox))
    assert listing.status_code == 400
    error = graph_error(listing)
    assert (error["code"], error["error_subcode"]) == (190, 463)
    assert error["message"].startswith("Error validating access token: Session has expired on")
    assert http.get(posts_url(sandbox, page=OTHER_PAGE)).status_code == 200

    mine, other = window_posts()[0], window_posts(page=OTHER_PAGE)[0]
    batch = [{"method": "GET", "relative_url": f"{pid}?fields=id"} for pid in (other.id, mine.id)]
    mixed = http.post(f"{sandbox.base_url}/v25.0/", data={"batch": json.dumps(batch)})
    assert mixed.status_code == 400 and graph_error(mixed)["error_subcode"] == 463
    assert run_batch(http, sandbox, [f"{other.id}?fields=id"])[0] is not None
    assert [r.fault for r in sandbox.requests(PAGE)] == ["expired_token", "expired_token"]


def test_transient_failures_cycle_through_realistic_kinds(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    sandbox.faults.fail_next(PAGE, 3)
    replies = [http.get(posts_url(sandbox), params={"limit": 1}) for _ in range(4)]
    assert [reply.status_code for reply in replies] == [400, 500, 503, 200]

    page_limit = graph_error(replies[0])
    assert (page_limit["code"], page_limit["is_transient"]) == (32, True)
    assert json.loads(replies[0].headers["X-Page-Usage"])["call_count"] == 100
    server_error = graph_error(replies[1])
    assert (server_error["code"], server_error["is_transient"]) == (2, True)
    assert replies[2].headers["content-type"].startswith("text/html")
    with pytest.raises(ValueError):
        replies[2].json()
    assert "Retry-After" not in replies[0].headers

    assert http.get(posts_url(sandbox, page=OTHER_PAGE)).status_code == 200
    assert sandbox.request_count(PAGE) == 4
    assert sandbox.request_count() == 5
    assert [r.fault for r in sandbox.requests(PAGE)] == [
        "transient:page_limit",
        "transient:server_error",
        "transient:unavailable",
        None,
    ]


def test_transient_kind_can_be_chosen_and_fails_whole_batches(
    sandbox: SandboxServer, http: requests.Session, anon: requests.Session
) -> None:
    admin = f"{sandbox.base_url}/_sandbox/faults"
    assert anon.post(
        admin, json={"transient_kind": "buc_limit", "transient_failures": {PAGE: 1}}
    ).ok
    post = window_posts()[0]
    batch = json.dumps([{"method": "GET", "relative_url": f"{post.id}?fields=id"}])
    failed = http.post(f"{sandbox.base_url}/v25.0/", data={"batch": batch})
    assert failed.status_code == 400 and graph_error(failed)["code"] == 80001
    buc = json.loads(failed.headers["X-Business-Use-Case-Usage"])
    assert buc[PAGE][0]["call_count"] == 100 and buc[PAGE][0]["type"] == "pages"
    assert http.post(f"{sandbox.base_url}/v25.0/", data={"batch": batch}).status_code == 200
    assert sandbox.faults.transient_failures == {}


def test_usage_headers_are_low_by_default_and_follow_the_switch(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    usage_names = ("X-App-Usage", "X-Page-Usage")
    quiet = http.get(posts_url(sandbox), params={"limit": 1})
    for name in usage_names:
        assert 0 < json.loads(quiet.headers[name])["call_count"] < 50
    sandbox.faults.rate_limit_usage_pct = 87
    busy = http.get(posts_url(sandbox), params={"limit": 1})
    for name in usage_names:
        assert json.loads(busy.headers[name]) == {
            "call_count": 87,
            "total_cputime": 87,
            "total_time": 87,
        }
    buc = json.loads(busy.headers["X-Business-Use-Case-Usage"])
    assert buc[PAGE][0]["call_count"] == 87
    assert "estimated_time_to_regain_access" in buc[PAGE][0]


def test_latency_switch_is_recorded(sandbox: SandboxServer, http: requests.Session) -> None:
    sandbox.faults.latency_ms = 20
    http.get(posts_url(sandbox), params={"limit": 1})
    sandbox.faults.latency_ms = 0
    http.get(posts_url(sandbox), params={"limit": 1})
    assert [record.latency_ms for record in sandbox.requests()] == [20, 0]


# --- admin endpoints and server lifecycle ------------------------------------------------------


def test_admin_endpoints(
    sandbox: SandboxServer, http: requests.Session, anon: requests.Session
) -> None:
    admin = f"{sandbox.base_url}/_sandbox"
    defaults = anon.get(f"{admin}/faults").json()
    assert defaults == FaultState().snapshot()
    assert defaults["latency_ms"] == 0 and defaults["rate_limit_usage_pct"] is None

    changed = anon.post(
        f"{admin}/faults",
        json={"expired_token_pages": ["2", "1"], "null_batch_items": 2, "invalid_metrics": ["x"]},
    )
    assert changed.status_code == 200
    assert changed.json()["expired_token_pages"] == ["1", "2"]
    assert sandbox.faults.null_batch_items == 2 and sandbox.faults.invalid_metrics == {"x"}

    for bad in ({"no_such_switch": 1}, {"latency_ms": -5}, {"expired_token_pages": "1"}):
        reply = anon.post(f"{admin}/faults", json=bad)
        assert reply.status_code == 400 and reply.json()["error"]
    assert anon.post(f"{admin}/faults", data="not json").status_code == 400
    assert anon.get(f"{admin}/faults").json() == changed.json()  # nothing half-applied

    http.get(posts_url(sandbox, page=OTHER_PAGE), params={"limit": 1})
    http.get(posts_url(sandbox), params={"limit": 1})
    logged = anon.get(f"{admin}/requests", params={"page_id": PAGE}).json()
    assert [entry["page_ids"] for entry in logged] == [[PAGE]]
    assert logged[0]["status"] == 200 and logged[0]["path"] == f"/v25.0/{PAGE}/posts"
    assert len(anon.get(f"{admin}/requests").json()) == 2  # admin calls are not logged

    assert anon.post(f"{admin}/reset").status_code == 200
    assert anon.get(f"{admin}/faults").json() == defaults
    assert anon.get(f"{admin}/requests").json() == []


def test_fault_state_python_api() -> None:
    faults = FaultState(latency_ms=5, transient_failures={PAGE: 2})
    assert faults.latency_ms == 5
    assert faults.take_transient([OTHER_PAGE]) is None
    assert faults.take_transient([PAGE, PAGE]) is not None  # one call, one failure used
    assert faults.transient_failures == {PAGE: 1}
    faults.transient_kind = "server_error"
    assert faults.take_transient([PAGE]) == "server_error"
    assert faults.take_transient([PAGE]) is None
    with pytest.raises(ValueError, match="unknown fault switch"):
        faults.update(latency=3)
    with pytest.raises(ValueError):
        faults.transient_kind = "sometimes"
    with pytest.raises(ValueError):
        faults.rate_limit_usage_pct = True  # type: ignore[assignment]
    faults.reset()
    assert faults.snapshot() == FaultState().snapshot()


def test_server_starts_and_stops_repeatedly() -> None:
    for _ in range(2):
        server = SandboxServer(clock=FixedClock(NOW), faults={"latency_ms": 1})
        with server:
            url = f"{server.base_url}/_sandbox/health"
            assert requests.get(url, timeout=5).json() == {"status": "ok"}
            assert server.faults.latency_ms == 1
        with pytest.raises(RuntimeError):
            _ = server.base_url
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=5)
