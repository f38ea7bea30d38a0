"""Facebook Pages through the Graph API: the posts of a day, their lifetime insights (reels
through `video_insights`), and page-level daily insights.

Wire format (the sandbox serves exactly this):
- Posts: `GET {base}/{version}/{page_id}/posts?fields=...&since=&until=&limit=`, one page after
  another by following `paging.next` until it is absent (cursors alone mean nothing), with a
  page cap. `paging.next` carries `access_token=`: it is stripped, the token goes in a header.
- Post metrics: Graph batch requests, `POST {base}/{version}/` with `batch=[{"method":"GET",
  "relative_url":"<post_id>?fields=shares,comments.summary(true).limit(0),permalink_url,
  status_type,attachments{media_type,type,target{id}},insights.metric(..)"}]` and
  `include_headers=false`. The reply is HTTP 200 with one entry per item, in order: `{"code":
  200, "body": "<JSON string>"}`, an item error, or `null` (not processed: retried).
- Reel metrics: a reel (a `/reel/` permalink, or "reel" in status_type / attachment type) gets
  a second item in the SAME batch, `<video_id>/video_insights?metric=..`, when its video id is
  known (from `attachments{target{id}}` or the `/reel/<video_id>` permalink, remembered from the
  listing, or from the permalink the warehouse stored, passed as `permalinks`). A reel first
  recognised in a metrics reply costs one more batch call for its `video_insights`, and is
  remembered from then on.
- Page metrics of a day or a range of days: ONE batch call (for up to 49 x 89 days) with
  `<page_id>?fields=followers_count,fan_count` (only when a snapshot is wanted) and one
  `<page_id>/insights?metric=..&period=day&since=<unix>&until=<unix>` item per 89 days (Graph
  serves at most 90 days per since/until; each item reaches one day further, see
  `fetch_account_metrics_between`).
- Posts of a range of days: one walk of `/{page_id}/posts` with `since` = the first day's
  midnight and `until` = the midnight after the last day (the edge caps no range).
- An invalid or deprecated metric ("(#100) The value must be a valid insights metric": the whole
  item fails) is pinned down with one-metric probes and dropped, for this client's lifetime (one
  run), only where it was rejected: the post item's `insights.metric(..)` ("post"), a reel's
  `video_insights` ("reel") or the page insights ("page"); the others keep asking it (see
  `graph.GraphApi`). Content batches report the post and reel rejections, page metrics the page
  ones; a name rejected by one while the other answered it carries that scope, e.g.
  "post_impressions_unique (reel)".
- Errors are classified by Graph `error.code` / `error_subcode` / `is_transient`, never by HTTP
  status alone (rate limits arrive as 400 or 403); see `graph.classify_graph_error`.
- Usage headers (`X-App-Usage`, `X-Page-Usage`, `X-Business-Use-Case-Usage`) slow requests down
  before the limits hit; see `graph.usage_pause`.

Content metrics (all `value_kind=LIFETIME_SNAPSHOT`: what Graph says now, recorded by the
assets only as a snapshot for the day they run):

| ContentMetrics | post item (`post_metrics`)         | reel `video_insights` (`reel_metrics`)  |
|----------------|------------------------------------|-----------------------------------------|
| views          | post_media_view                    | blue_reels_play_count                   |
| reach          | post_total_media_view_unique       | post_impressions_unique                 |
| reactions      | sum of post_reactions_by_type_total| sum of post_video_likes_by_reaction_type|
| likes          | its "like" count (*)               | its LIKE count (*)                      |
| comments       | comments.summary.total_count       | post_video_social_actions COMMENT (**)  |
| shares         | shares.count (**)                  | post_video_social_actions SHARE (**)    |
| clicks         | post_clicks                        | -                                       |
| video_views    | post_video_views (if configured)   | -                                       |
| impressions    | NULL: post_impressions deprecated  | -                                       |
| saves          | NULL: no such Facebook metric      | -                                       |

(*) 0 when the reaction dict is present without it: Graph lists non-zero types only.
(**) Graph omits `shares` and a zero breakdown key: absent stays NULL, never guessed as 0.

For a reel, a `video_insights` value wins over the post item's value of the same column; the
post item fills what `video_insights` did not say (e.g. clicks).

Account metrics (`fetch_account_metrics[_between]`, `page_metrics`), per calendar day; Graph's
daily page values end at a US-Pacific midnight, mapped with `graph.pacific_day`:

| AccountMetrics  | source                                                              |
|-----------------|---------------------------------------------------------------------|
| followers_total | `followers_count` of the page, only on the snapshot day             |
| views           | page_media_view                                                     |
| reach           | page_total_media_view_unique                                        |
| new_followers   | page_daily_follows_unique                                           |
| profile_views   | page_views_total                                                    |
| impressions     | NULL: page_impressions* are deprecated (2025-11)                    |
| website_clicks  | NULL: no current, non-deprecated page metric counts website clicks  |
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlencode

import requests

from analytics_pipeline.platforms import graph
from analytics_pipeline.platforms.base import (
    Account,
    AccountDescription,
    PlatformError,
    TokenStatus,
    days_between,
)
from analytics_pipeline.platforms.common import SessionClient
from analytics_pipeline.platforms.graph import (
    DEFAULT_GRAPH_API_VERSION,
    GRAPH_BATCH_LIMIT,
    GRAPH_MAX_PAGE_SIZE,
    Ask,
    GraphApi,
    GraphPlatform,
    GraphSettings,
    InvalidMetricError,
    as_int,
    day_start,
    read_account_node,
    text_field,
    unix,
)
from analytics_pipeline.platforms.graph_token import read_token_status
from analytics_pipeline.platforms.http import ApiSession, RetryConfig
from analytics_pipeline.platforms.redact import redacting_logger
from analytics_pipeline.platforms.text import extract_hashtags
from analytics_pipeline.records import (
    METRIC_FIELDS,
    AccountMetrics,
    ContentFormat,
    ContentItem,
    ContentMetrics,
    MetricsBatch,
    SkippedObject,
    ValueKind,
)

__all__ = [
    "METRIC_COLUMNS",
    "PAGE_METRIC_COLUMNS",
    "POST_FIELDS",
    "REEL_METRIC_COLUMNS",
    "FacebookClient",
    "FacebookSettings",
    "InvalidMetricError",
    "classify_graph_error",
    "classify_response",
    "create_session",
    "detect_format",
    "parse_page_insights",
    "parse_page_snapshot",
    "parse_post",
    "parse_post_metrics",
    "parse_reel_metrics",
    "reel_video_id",
    "usage_pause",
]

PLATFORM = "facebook"
GRAPH_PLATFORM = GraphPlatform(PLATFORM, "ANALYTICS_FACEBOOK")
logger = redacting_logger("analytics_pipeline.platforms.facebook")

POST_FIELDS = (
    "id,created_time,message,permalink_url,status_type,"
    "attachments{media_type,type,url,target,subattachments}"
)
# Fields of every metrics item besides insights: shares and the comment count (no comment data),
# plus what tells a reel and its video id apart (for posts listed by an earlier run).
_ITEM_FIELDS = (
    "shares,comments.summary(true).limit(0),permalink_url,status_type,"
    "attachments{media_type,type,target{id}}"
)

# Insight metric name -> ContentMetrics column. When two metrics feed one column (old and new
# reach), the first one in the configured metric order that returned a value wins.
METRIC_COLUMNS: Mapping[str, str] = {
    "post_media_view": "views",
    "post_total_media_view_unique": "reach",
    "post_impressions": "impressions",
    "post_impressions_unique": "reach",
    "post_clicks": "clicks",
    "post_video_views": "video_views",
    "post_reactions_like_total": "likes",
}
# Its value is a dict of non-zero reaction counts by type: reactions = sum, likes = "like".
REACTIONS_BY_TYPE = "post_reactions_by_type_total"

# `video_insights` reel metrics -> ContentMetrics column (same first-wins rule).
REEL_METRIC_COLUMNS: Mapping[str, str] = {
    "blue_reels_play_count": "views",
    "fb_reels_total_plays": "views",
    "post_impressions_unique": "reach",
}
REEL_REACTIONS = "post_video_likes_by_reaction_type"  # {"REACTION_LIKE": 3, ...}
REEL_SOCIAL_ACTIONS = "post_video_social_actions"  # {"COMMENT": 2, "SHARE": 1}

# Page insights (period=day) -> AccountMetrics column (first in configured order wins).
PAGE_METRIC_COLUMNS: Mapping[str, str] = {
    "page_media_view": "views",
    "page_total_media_view_unique": "reach",
    "page_daily_follows_unique": "new_followers",
    "page_daily_follows": "new_followers",
    "page_views_total": "profile_views",
    "page_impressions": "impressions",
    "page_impressions_unique": "reach",
}

_REEL_PATH = re.compile(r"/reel/(\d+)")
# Where a metric is rejected (`Ask.family`): a post item, a reel's video_insights, the page.
_POST_FAMILY, _REEL_FAMILY, _PAGE_FAMILY = "post", "reel", "page"
_CONTENT_FAMILIES = frozenset({_POST_FAMILY, _REEL_FAMILY})

# Page insights: "Only 90 days of insights can be viewed at one time when using the since and
# until parameters" (Graph's Page Insights reference; platform-facts.md). A request for n days
# spans n + 1 (see `fetch_account_metrics_between`), so a chunk holds 89 days.
PAGE_INSIGHTS_MAX_RANGE = dt.timedelta(days=90)
PAGE_INSIGHTS_CHUNK_DAYS = PAGE_INSIGHTS_MAX_RANGE.days - 1


@dataclass(frozen=True)
class FacebookSettings(GraphSettings):
    base_url: str = "https://graph.facebook.com"
    api_version: str = DEFAULT_GRAPH_API_VERSION
    post_metrics: tuple[str, ...] = (
        "post_media_view",
        "post_total_media_view_unique",
        "post_reactions_by_type_total",
        "post_clicks",
    )
    reel_metrics: tuple[str, ...] = (
        "blue_reels_play_count",
        "post_impressions_unique",
        "post_video_likes_by_reaction_type",
        "post_video_social_actions",
    )
    page_metrics: tuple[str, ...] = (
        "page_media_view",
        "page_total_media_view_unique",
        "page_daily_follows_unique",
        "page_views_total",
    )
    page_size: int = GRAPH_MAX_PAGE_SIZE
    batch_size: int = GRAPH_BATCH_LIMIT
    # Pagination cap per listing: exceeding it raises INVALID_RESPONSE, never loops forever.
    max_pages: int = 200
    # Above this usage percentage requests are spaced out (see `graph.usage_pause`).
    usage_slowdown_pct: float = 80.0
    # Pause between requests when usage reaches 100 % (scaled down linearly from there).
    usage_max_pause_s: float = 60.0
    retry: RetryConfig = field(default_factory=RetryConfig)
    # Validation and `api_root` come from GraphSettings.


# --------------------------------------------------------------------------- errors, session


def classify_graph_error(
    error: Mapping[str, Any],
    *,
    http_status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> PlatformError:
    """`graph.classify_graph_error` for Facebook (see its table)."""
    return graph.classify_graph_error(
        error, platform=GRAPH_PLATFORM, http_status=http_status, headers=headers
    )


def classify_response(response: requests.Response) -> PlatformError | None:
    """`graph.classify_response` for Facebook: the `ApiSession` classifier."""
    return graph.classify_response(response, platform=GRAPH_PLATFORM)


def usage_pause(headers: Mapping[str, str], settings: FacebookSettings) -> float:
    """`graph.usage_pause` with the settings' slowdown threshold and maximum pause."""
    return graph.usage_pause(
        headers,
        slowdown_pct=settings.usage_slowdown_pct,
        max_pause_s=settings.usage_max_pause_s,
    )


def create_session(
    settings: FacebookSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    http: requests.Session | None = None,
) -> ApiSession:
    """The `ApiSession` a FacebookClient uses (Graph classifier + usage throttle)."""
    return graph.create_graph_session(GRAPH_PLATFORM, settings, sleep=sleep, http=http)


def _invalid(message: str) -> PlatformError:
    return graph.invalid_response(PLATFORM, message)


# --------------------------------------------------------------------------- parsing posts


def parse_created_time(value: Any) -> dt.datetime:
    """Graph's `2026-11-20T14:03:11+0000` (also accepts other ISO 8601 forms) as aware UTC."""
    return graph.parse_graph_time(value, platform=PLATFORM, name="created_time")


def _attachments(post: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = post.get("attachments")
    if isinstance(raw, dict):
        raw = raw.get("data")
    return [a for a in raw if isinstance(a, dict)] if isinstance(raw, list) else []


def _has_subattachments(attachment: Mapping[str, Any]) -> bool:
    sub = attachment.get("subattachments")
    if isinstance(sub, dict):
        sub = sub.get("data")
    return isinstance(sub, list) and len(sub) > 0


def _lower(value: Any) -> str:
    return value.lower() if isinstance(value, str) else ""


def detect_format(post: Mapping[str, Any]) -> ContentFormat:
    """The format of a Graph post, first matching row wins:

    | evidence                                                             | format   |
    |----------------------------------------------------------------------|----------|
    | `/reel/` in permalink_url, or "reel" in status_type or in any        | REEL     |
    |   attachment media_type/type                                         |          |
    | an attachment with subattachments, or media_type/type "album"        | CAROUSEL |
    | media_type "video" (type video_inline, video_autoplay, ...)          | VIDEO    |
    | media_type "photo"                                                   | POST     |
    | media_type "link", type "share", or status_type "shared_story" with  | LINK     |
    |   an attachment that has a url                                       |          |
    | no attachments: status_type added_video -> VIDEO, added_photos ->    | TEXT     |
    |   POST, anything else                                                |          |
    | attachments of another kind (event, note, ...)                       | POST     |
    """
    attachments = _attachments(post)
    status_type = _lower(post.get("status_type"))
    kinds = [(_lower(a.get("media_type")), _lower(a.get("type"))) for a in attachments]
    if "/reel/" in _lower(post.get("permalink_url")) or "reel" in status_type:
        return ContentFormat.REEL
    if any("reel" in media or "reel" in kind for media, kind in kinds):
        return ContentFormat.REEL
    if any(_has_subattachments(a) for a in attachments) or any(
        "album" in (media, kind) for media, kind in kinds
    ):
        return ContentFormat.CAROUSEL
    medias = {media for media, _ in kinds}
    if "video" in medias:
        return ContentFormat.VIDEO
    if "photo" in medias:
        return ContentFormat.POST
    if "link" in medias or any(kind == "share" for _, kind in kinds):
        return ContentFormat.LINK
    if status_type == "shared_story" and any(a.get("url") for a in attachments):
        return ContentFormat.LINK
    if not attachments:
        return {"added_video": ContentFormat.VIDEO, "added_photos": ContentFormat.POST}.get(
            status_type, ContentFormat.TEXT
        )
    return ContentFormat.POST


def reel_video_id(post: Mapping[str, Any]) -> str | None:
    """The video id behind a reel post (None when the post is not a reel or does not say):
    the first attachment's `target.id`, else the number of a `/reel/<id>` permalink."""
    if detect_format(post) is not ContentFormat.REEL:
        return None
    for attachment in _attachments(post):
        target = attachment.get("target")
        target_id = target.get("id") if isinstance(target, dict) else None
        if isinstance(target_id, str) and target_id:
            return target_id
    match = _REEL_PATH.search(_lower(post.get("permalink_url")))
    return match.group(1) if match else None


def parse_post(post: Any) -> ContentItem:
    """One element of `/{page_id}/posts` `data` as a ContentItem."""
    if not isinstance(post, dict) or not isinstance(post.get("id"), str) or not post["id"]:
        raise _invalid(f"post without an id: {graph.excerpt(json.dumps(post, default=str))}")
    message = post.get("message")
    caption = message if isinstance(message, str) else None
    permalink = post.get("permalink_url")
    return ContentItem(
        external_content_id=post["id"],
        format=detect_format(post),
        published_at=parse_created_time(post.get("created_time")),
        caption=caption,
        hashtags=extract_hashtags(caption),
        permalink=permalink if isinstance(permalink, str) else None,
    )


# --------------------------------------------------------------------------- parsing metrics


def _by_name(data: Any) -> dict[str, Any]:
    return graph.insights_by_name(data, graph.last_value)  # lifetime: one value


def _counts(value: Any, metric: str) -> dict[str, int] | None:
    """A {type: count} breakdown with upper-cased keys, or None when malformed."""
    if not isinstance(value, dict):
        logger.debug("%s value is not a dict; left NULL", metric)
        return None
    counts = {str(kind).upper(): as_int(count) for kind, count in value.items()}
    if any(count is None for count in counts.values()):
        logger.debug("%s has non-integer counts; left NULL", metric)
        return None
    return {kind: count for kind, count in counts.items() if count is not None}


def _reaction_columns(value: Any, metric: str = REACTIONS_BY_TYPE) -> dict[str, int | None]:
    counts = _counts(value, metric)
    if counts is None:
        return {}
    likes = counts.get("LIKE", counts.get("REACTION_LIKE", 0))
    # Graph lists only non-zero reaction types: a present dict without "like" means 0 likes.
    return {"reactions": sum(counts.values()), "likes": likes}


def _social_columns(value: Any) -> dict[str, int | None]:
    """COMMENT / SHARE counts of `post_video_social_actions`. An absent key stays NULL: like the
    post object's `shares` (omitted at zero), absence is not reported as a zero."""
    counts = _counts(value, REEL_SOCIAL_ACTIONS)
    if counts is None:
        return {}
    return {"comments": counts.get("COMMENT"), "shares": counts.get("SHARE")}


def _columns(
    by_name: Mapping[str, Any],
    metric_order: Sequence[str],
    simple: Mapping[str, str],
    special: Mapping[str, Callable[[Any], dict[str, int | None]]],
) -> dict[str, int | None]:
    columns: dict[str, int | None] = {}

    def put(column: str, number: int | None) -> None:
        if columns.get(column) is None:
            columns[column] = number

    ordered = [*metric_order, *(name for name in by_name if name not in metric_order)]
    for name in ordered:
        if name not in by_name:
            continue
        value = by_name[name]
        if name in special:
            for column, number in special[name](value).items():
                put(column, number)
        elif name in simple:
            put(simple[name], as_int(value))
        else:
            logger.debug("ignoring unknown insights metric %r", name)
    return columns


def _insight_columns(body: Mapping[str, Any], metric_order: Sequence[str]) -> dict[str, int | None]:
    insights = body.get("insights")
    data = insights.get("data") if isinstance(insights, dict) else None
    return _columns(
        _by_name(data), metric_order, METRIC_COLUMNS, {REACTIONS_BY_TYPE: _reaction_columns}
    )


def parse_post_metrics(
    post_id: str, body: Mapping[str, Any], metric_order: Sequence[str] = ()
) -> ContentMetrics:
    """One successful batch item body as ContentMetrics.

    Missing means NULL, a returned 0 is 0: no `shares` object -> shares NULL (Graph omits it
    for posts never shared, but we do not guess); no `insights`, an empty `data` list, or a
    metric absent from it -> that column NULL.
    """
    columns = _insight_columns(body, metric_order)
    shares = body.get("shares")
    comments = body.get("comments")
    summary = comments.get("summary") if isinstance(comments, dict) else None
    return ContentMetrics(
        external_content_id=post_id,
        value_kind=ValueKind.LIFETIME_SNAPSHOT,
        shares=as_int(shares.get("count")) if isinstance(shares, dict) else None,
        comments=as_int(summary.get("total_count")) if isinstance(summary, dict) else None,
        **columns,
    )


def parse_reel_metrics(
    post_id: str, body: Mapping[str, Any], metric_order: Sequence[str] = ()
) -> ContentMetrics:
    """A `/{video-id}/video_insights` reply as the metrics of reel post `post_id` (an empty
    `data` list: insights not computed yet, every column NULL)."""
    special: dict[str, Callable[[Any], dict[str, int | None]]] = {
        REEL_REACTIONS: lambda value: _reaction_columns(value, REEL_REACTIONS),
        REEL_SOCIAL_ACTIONS: _social_columns,
    }
    columns = _columns(_by_name(body.get("data")), metric_order, REEL_METRIC_COLUMNS, special)
    return ContentMetrics(
        external_content_id=post_id, value_kind=ValueKind.LIFETIME_SNAPSHOT, **columns
    )


def merge_reel_metrics(post: ContentMetrics, reel: ContentMetrics) -> ContentMetrics:
    """The reel's `video_insights` values over the post item's; the post fills the gaps."""
    merged = {
        name: getattr(reel, name) if getattr(reel, name) is not None else getattr(post, name)
        for name in METRIC_FIELDS
    }
    return replace(post, **merged)


def parse_page_snapshot(body: Mapping[str, Any]) -> int | None:
    """`followers_count` of `/{page-id}?fields=followers_count,fan_count` (fan_count counts
    likes, a legacy figure: not used)."""
    return as_int(body.get("followers_count"))


def parse_page_insights(
    body: Mapping[str, Any], day: dt.date, metric_order: Sequence[str] = ()
) -> dict[str, int | None]:
    """`/{page-id}/insights?period=day&since&until` as AccountMetrics columns for `day`."""
    found: dict[str, int | None] = {}
    data = body.get("data")
    for entry in data if isinstance(data, list) else []:
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and entry.get("period", "day") == "day"
        ):
            found.setdefault(entry["name"], graph.daily_value(entry, day, platform=PLATFORM))
    columns: dict[str, int | None] = {}
    for name in [*metric_order, *(n for n in found if n not in metric_order)]:
        column = PAGE_METRIC_COLUMNS.get(name)
        if column is None or name not in found:
            continue
        if columns.get(column) is None:
            columns[column] = found[name]
    return columns


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class _PostReply:
    metrics: ContentMetrics
    video_id: str | None  # set when the item body shows a reel


def _quote_id(object_id: str) -> str:
    return quote(object_id, safe="_")


class FacebookClient(SessionClient):
    """Facebook Pages: `external_account_id` is the Page id, the token a Page access token."""

    platform = PLATFORM
    content_metrics_are_lifetime = True

    def __init__(
        self,
        settings: FacebookSettings,
        account: Account,
        *,
        session: ApiSession | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """A client for the page of `account`. `session` defaults to
        `create_session(settings, sleep=sleep)`; `sleep` is only used for that default session
        (tests inject a recorder)."""
        super().__init__(account)
        self.settings = settings
        self._session = session or create_session(settings, sleep=sleep)
        self._graph = GraphApi.for_settings(GRAPH_PLATFORM, self._session, settings, account.token)
        self._reel_videos: dict[str, str] = {}  # reel post id -> video id, as learned

    @property
    def rejected_metrics(self) -> tuple[str, ...]:
        """Post-item and reel metrics rejected so far (see `GraphApi.rejection_report`)."""
        return self._graph.rejection_report(lambda family: family in _CONTENT_FAMILIES)

    def token_status(self) -> TokenStatus:
        """The token's limits from `debug_token`, in ONE batch call (see `graph_token`)."""
        return read_token_status(self._graph, self.account.token)

    def describe_account(self) -> AccountDescription:
        """`GET /{page-id}?fields=id,name,link,followers_count`: `followers_count` needs the
        Page read access ingestion needs (pages_read_engagement)."""
        page_id = self.account.external_account_id
        body = read_account_node(
            self._graph,
            page_id,
            "id,name,link,followers_count",
            node_type="Page",
            expected="the numeric id of the Facebook Page",
        )
        name = text_field(body, "name")
        if name is None:
            raise _invalid(f"page {page_id} answered without a name")
        return AccountDescription(page_id, name, text_field(body, "link"))

    # ---- listing

    def list_content_between(self, start: dt.date, end: dt.date) -> Iterator[ContentItem]:
        """Posts published on the UTC days `start`..`end`: ONE walk of `/{page-id}/posts` with
        `since`/`until` spanning the whole range (Graph sets no maximum range on this edge),
        ceil(posts / page_size) pages."""
        days_between(start, end)  # validates the range
        since = day_start(start)
        until = day_start(end + dt.timedelta(days=1))
        page_id = self.account.external_account_id
        url = f"{self.settings.api_root}/{quote(page_id, safe='')}/posts"
        params: dict[str, str | int] = {
            "fields": POST_FIELDS,
            "since": unix(since),
            "until": unix(until),
            "limit": self.settings.page_size,
        }
        seen: set[str] = set()
        span = str(start) if start == end else f"{start}..{end}"
        what = f"posts of page {page_id} on {span}"
        for body in self._graph.iter_pages(url, params, what):
            for raw in self._graph.data_list(body, "posts"):
                post = parse_post(raw)
                if post.external_content_id in seen:
                    continue
                seen.add(post.external_content_id)
                video_id = reel_video_id(raw)
                if video_id is not None:
                    self._reel_videos[post.external_content_id] = video_id
                if since <= post.published_at < until:
                    yield post
                else:
                    logger.debug(
                        "dropping post %s published outside %s", post.external_content_id, span
                    )

    # ---- content metrics

    def fetch_content_metrics(
        self,
        content_ids: Sequence[str],
        day: dt.date,
        *,
        permalinks: Mapping[str, str | None] | None = None,
    ) -> MetricsBatch:
        """Lifetime metrics as of now (Graph cannot answer for a past `day`), batched:
        ceil(n / batch_size) HTTP calls in the normal path. Reels whose video id is known (from
        this client's listings or a stored `/reel/<id>` permalink) ride in the same batches; a
        reel first recognised in the reply costs one more batch call."""
        ids = list(dict.fromkeys(content_ids))
        self._learn_reels_from_permalinks(ids, permalinks or {})
        asks: list[Ask[Any]] = []
        for post_id in ids:
            asks.append(self._post_ask(post_id))
            if post_id in self._reel_videos and self.settings.reel_metrics:
                asks.append(self._reel_ask(post_id, self._reel_videos[post_id]))
        outcomes = self._graph.run(asks)
        late = self._newly_found_reels(ids, outcomes)
        if late:
            outcomes.update(self._graph.run(late))
        metrics: dict[str, ContentMetrics] = {}
        skipped: list[SkippedObject] = []
        for post_id in ids:
            post = outcomes.get(("post", post_id))
            if isinstance(post, PlatformError):
                skipped.append(SkippedObject(post_id, post.code or "unknown", post.message))
                continue
            if not isinstance(post, _PostReply):
                continue
            reel = outcomes.get(("reel", post_id))
            if isinstance(reel, ContentMetrics):
                metrics[post_id] = merge_reel_metrics(post.metrics, reel)
            else:
                if isinstance(reel, PlatformError):
                    logger.debug("reel insights of %s unavailable: %s", post_id, reel.message)
                metrics[post_id] = post.metrics
        logger.debug(
            "facebook metrics for %d posts (%s): %d ok, %d skipped",
            len(ids),
            day,
            len(metrics),
            len(skipped),
        )
        return MetricsBatch(
            metrics=tuple(metrics[i] for i in ids if i in metrics),
            skipped=tuple(skipped),
            rejected_metrics=self.rejected_metrics,
        )

    def _learn_reels_from_permalinks(
        self, ids: Sequence[str], permalinks: Mapping[str, str | None]
    ) -> None:
        for post_id in ids:
            if post_id not in self._reel_videos:
                video_id = reel_video_id({"permalink_url": permalinks.get(post_id)})
                if video_id is not None:
                    self._reel_videos[post_id] = video_id

    def _newly_found_reels(
        self, ids: Sequence[str], outcomes: Mapping[Hashable, Any]
    ) -> list[Ask[Any]]:
        late: list[Ask[Any]] = []
        for post_id in ids:
            post = outcomes.get(("post", post_id))
            if not isinstance(post, _PostReply) or post.video_id is None:
                continue
            self._reel_videos[post_id] = post.video_id
            if ("reel", post_id) not in outcomes and self.settings.reel_metrics:
                late.append(self._reel_ask(post_id, post.video_id))
        return late

    def _post_ask(self, post_id: str) -> Ask[_PostReply]:
        order = self.settings.post_metrics

        def url(metrics: Sequence[str]) -> str:
            fields = _ITEM_FIELDS
            if metrics:
                fields += f",insights.metric({','.join(metrics)})"
            return f"{_quote_id(post_id)}?fields={fields}"

        def parse(body: Mapping[str, Any]) -> _PostReply:
            return _PostReply(parse_post_metrics(post_id, body, order), reel_video_id(body))

        return Ask(
            key=("post", post_id),
            url=url,
            parse=parse,
            metrics=order,
            family=_POST_FAMILY,
            probe_url=lambda m: f"{_quote_id(post_id)}?fields=insights.metric({m})",
        )

    def _reel_ask(self, post_id: str, video_id: str) -> Ask[ContentMetrics]:
        order = self.settings.reel_metrics
        return Ask(
            key=("reel", post_id),
            url=lambda ms: f"{_quote_id(video_id)}/video_insights?metric={','.join(ms)}",
            parse=lambda body: parse_reel_metrics(post_id, body, order),
            metrics=order,
            family=_REEL_FAMILY,
            metrics_required=True,
        )

    # ---- account metrics

    def fetch_account_metrics_between(
        self, start: dt.date, end: dt.date, *, snapshot_day: dt.date | None
    ) -> dict[dt.date, AccountMetrics]:
        """Page-level metrics of the days `start`..`end` (see the module docstring table) in
        ceil(items / batch_size) batch calls, i.e. ONE call for up to 49 x 89 days: one
        `insights` item per chunk of `PAGE_INSIGHTS_CHUNK_DAYS` days, plus the
        `followers_count` snapshot item when `snapshot_day` is in the range.

        Each chunk's `since`/`until` reach one day past its last day, so the value whose
        Pacific `end_time` maps to that day is in the reply whatever the daylight-saving
        offset: a chunk of n days spans n + 1 days, at most Graph's 90 (`PAGE_INSIGHTS_MAX_
        RANGE`)."""
        days = days_between(start, end)
        page = _quote_id(self.account.external_account_id)
        asks: list[Ask[Any]] = []
        if snapshot_day is not None and start <= snapshot_day <= end:
            asks.append(
                Ask(
                    key="snapshot",
                    url=lambda _ms: f"{page}?fields=followers_count,fan_count",
                    parse=parse_page_snapshot,
                )
            )
        chunks = [
            days[offset : offset + PAGE_INSIGHTS_CHUNK_DAYS]
            for offset in range(0, len(days), PAGE_INSIGHTS_CHUNK_DAYS)
        ]
        for chunk in chunks:
            asks.append(self._insights_ask(page, chunk))
        outcomes = self._graph.run(asks)
        snapshot = outcomes.get("snapshot")
        columns: dict[dt.date, dict[str, int | None]] = {}
        for outcome in (*(outcomes[("insights", c[0])] for c in chunks), snapshot):
            if isinstance(outcome, PlatformError):
                raise outcome  # the page itself is gone: nothing of these days can land
            if isinstance(outcome, dict):
                columns.update(outcome)
        rejected = self._graph.rejected(_PAGE_FAMILY)
        return {
            day: AccountMetrics(
                followers_total=snapshot
                if day == snapshot_day and isinstance(snapshot, int)
                else None,
                rejected_metrics=rejected,
                **columns.get(day, {}),
            )
            for day in days
        }

    def _insights_ask(
        self, page: str, days: Sequence[dt.date]
    ) -> Ask[dict[dt.date, dict[str, int | None]]]:
        """`/{page-id}/insights?period=day` for `days` (consecutive), parsed per day."""
        order = self.settings.page_metrics
        since = unix(day_start(days[0]))
        until = unix(day_start(days[-1] + dt.timedelta(days=2)))

        def insights_url(metrics: Sequence[str]) -> str:
            query = {"metric": ",".join(metrics), "period": "day", "since": since, "until": until}
            return f"{page}/insights?{urlencode(query, safe=',')}"

        return Ask(
            key=("insights", days[0]),
            url=insights_url,
            parse=lambda body: {day: parse_page_insights(body, day, order) for day in days},
            metrics=order,
            family=_PAGE_FAMILY,
            metrics_required=True,
        )
