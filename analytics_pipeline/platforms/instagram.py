"""Instagram professional accounts through the Graph API (Instagram API with Facebook Login).

`external_account_id` is the IG user id (the professional account), the token a user or page
access token with `instagram_basic` + `instagram_manage_insights`. Same host, versioning, error
codes, usage headers and batch requests as Facebook: see `graph`.

Wire format (the sandbox serves exactly this):
- Media: `GET {base}/{version}/{ig-user-id}/media?fields=id,caption,media_type,
  media_product_type,permalink,timestamp,children{media_type}&limit=`, newest first, cursor
  paged by following `paging.next` until it is absent. The edge has no working time filter, so
  paging stops as soon as a page ends with an item older than the asked day (the oldest item of
  a newest-first page is its last), with a page cap.
- Stories: `GET {base}/{version}/{ig-user-id}/stories?fields=...` (same fields). Only live
  stories (the last 24 h) are returned, so a day's stories can only be listed while they live:
  the refresh schedule lists and snapshots the current day every few hours.
- Media insights: batch requests (`POST /`, at most 50 `<media-id>/insights?metric=..` items
  per call), each item with the metric list of ITS media type: `feed_metrics` (image, carousel
  and feed video), `reel_metrics`, `story_metrics`. The type comes from the listing; for ids
  listed by an earlier run one batch of `<media-id>?fields=media_type,media_product_type,
  timestamp` reads is sent first (ceil(unknown / 50) calls), and remembered.
- A metric Instagram rejects for a media ("(#100) The Media Insights API does not support the
  views metric for this media product type.", error 100: the whole item fails) is pinned down
  by one-metric probes of one failed media per type (one extra call for all types that failed
  in the batch), then dropped for that `media_type/media_product_type` only (`media_scope`:
  "VIDEO/FEED" -- IMAGE/FEED and CAROUSEL_ALBUM/FEED keep asking it) for this client's
  lifetime (one run), and the failed media are asked again without it (one more call). Their
  other metrics land, the rejected column stays NULL. `MetricsBatch.rejected_metrics` names
  it, with the types that rejected it when another type answered it: "views (VIDEO/FEED)".
- Account metrics of a day or a range of days, in batch calls (one for a day, two for 90
  days): `<ig-user-id>?fields=followers_count` (only when a snapshot is wanted),
  `<ig-user-id>/insights?metric=reach,follower_count&period=day&since=&until=` (time series:
  one value per Pacific day, see `graph.pacific_day`; one item per 29 days, as Graph serves
  at most 30 days per since/until and each item reaches one day further) and, per day,
  `<ig-user-id>/insights?metric=profile_views,website_clicks,views&metric_type=total_value&
  period=day&since=<day>&until=<day+1>` (these metrics only exist as totals over a range, so
  a daily value needs its own item).
- A range of days is listed with ONE walk of `/media` down to the range's first day (then
  `/stories`), instead of one walk from the newest item per day.

Content metrics (`value_kind=LIFETIME_SNAPSHOT`; media insights are lifetime totals):

| ContentMetrics | FEED / REELS insight | STORY insight | why NULL otherwise                     |
|----------------|----------------------|---------------|----------------------------------------|
| views          | views                | views         | impressions/plays/video_views are      |
|                |                      |               |   deprecated (2025-04): never asked    |
| reach          | reach                | reach         |                                        |
| likes          | likes                | -             | stories cannot be liked                |
| comments       | comments             | replies       | a story's replies are its comments     |
| shares         | shares               | shares        |                                        |
| saves          | saved                | -             | stories cannot be saved                |
| reactions      | -                    | -             | Instagram has no reaction types        |
| impressions, clicks, video_views | -  | -             | deprecated or not offered              |

NULL versus 0: an empty `data` list (insights not computed yet, up to 48 h) -> every column
NULL; a metric absent from the reply, or rejected for the media's type -> NULL; a returned 0
-> 0. "(#10) Not enough viewers" (a story seen by fewer than 5 accounts) -> every column NULL:
no data, not a permission error.
Deleted media (100/33) and media posted before the business conversion (100/2108006) ->
SkippedObject. Carousel children have no insights and are never asked (an album is one item).
A story older than 24 h is left out (no row): its insights are gone, and a NULL row would
overwrite the values captured while it was live.

Account metrics:

| AccountMetrics  | source                                                               |
|-----------------|----------------------------------------------------------------------|
| followers_total | `followers_count`, only on the snapshot day (a current total)        |
| new_followers   | follower_count (time series): NEW followers per day, only for the    |
|                 |   last 30 days (not today): older days are not asked -> NULL         |
| reach           | reach (time series)                                                  |
| profile_views   | profile_views (total_value over the day)                             |
| website_clicks  | website_clicks (total_value over the day)                            |
| views           | views (total_value over the day)                                     |
| impressions     | NULL: impressions is deprecated                                      |
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from analytics_pipeline.platforms import graph
from analytics_pipeline.platforms.base import (
    Account,
    AccountDescription,
    PlatformError,
    TokenStatus,
    days_between,
)
from analytics_pipeline.platforms.common import SessionClient, utc_now
from analytics_pipeline.platforms.graph import (
    DEFAULT_GRAPH_API_VERSION,
    GRAPH_BATCH_LIMIT,
    GRAPH_MAX_PAGE_SIZE,
    Ask,
    GraphApi,
    GraphPlatform,
    GraphSettings,
    NotEnoughViewersError,
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
    AccountMetrics,
    ContentFormat,
    ContentItem,
    ContentMetrics,
    MetricsBatch,
    SkippedObject,
    ValueKind,
)

__all__ = [
    "ACCOUNT_METRIC_COLUMNS",
    "MEDIA_FIELDS",
    "MEDIA_METRIC_COLUMNS",
    "TIME_SERIES_ACCOUNT_METRICS",
    "InstagramClient",
    "InstagramSettings",
    "MediaFamily",
    "classify_response",
    "create_session",
    "media_family",
    "media_format",
    "media_scope",
    "parse_account_insights",
    "parse_media",
    "parse_media_insights",
]

PLATFORM = "instagram"
GRAPH_PLATFORM = GraphPlatform(PLATFORM, "ANALYTICS_INSTAGRAM")
logger = redacting_logger("analytics_pipeline.platforms.instagram")

MEDIA_FIELDS = "id,caption,media_type,media_product_type,permalink,timestamp,children{media_type}"
_INFO_FIELDS = "media_type,media_product_type,timestamp"
STORY_LIFETIME = dt.timedelta(hours=24)
# follower_count covers the last 30 days, not today; older days are not asked (NULL).
FOLLOWER_COUNT_DAYS = 30
# User insights: at most 30 days between since and until (Graph answers "(#100) There cannot
# be more than 30 days (2592000 s) between since and until"; the sandbox enforces the same). A
# time-series request for n days spans n + 1, so a chunk holds 29 days.
USER_INSIGHTS_MAX_RANGE = dt.timedelta(days=30)
SERIES_CHUNK_DAYS = USER_INSIGHTS_MAX_RANGE.days - 1

# Media insight name -> ContentMetrics column (the first in configured order with a value wins).
MEDIA_METRIC_COLUMNS: Mapping[str, str] = {
    "views": "views",
    "reach": "reach",
    "likes": "likes",
    "comments": "comments",
    "replies": "comments",
    "shares": "shares",
    "saved": "saves",
    # Deprecated (error 100 since 2025-04) but mapped should a configuration still ask:
    "impressions": "impressions",
    "video_views": "video_views",
}

# Account insight name -> AccountMetrics column.
ACCOUNT_METRIC_COLUMNS: Mapping[str, str] = {
    "follower_count": "new_followers",
    "reach": "reach",
    "profile_views": "profile_views",
    "website_clicks": "website_clicks",
    "views": "views",
    "impressions": "impressions",
}
# Account metrics Graph serves as a daily time series; every other one only as
# `metric_type=total_value` over the since/until range.
TIME_SERIES_ACCOUNT_METRICS = frozenset({"reach", "follower_count"})


class MediaFamily:
    """Which metric list a media gets (its `media_product_type`, roughly)."""

    FEED = "FEED"
    REEL = "REEL"
    STORY = "STORY"


@dataclass(frozen=True)
class InstagramSettings(GraphSettings):
    base_url: str = "https://graph.facebook.com"
    api_version: str = DEFAULT_GRAPH_API_VERSION
    feed_metrics: tuple[str, ...] = ("views", "reach", "likes", "comments", "shares", "saved")
    reel_metrics: tuple[str, ...] = ("views", "reach", "likes", "comments", "shares", "saved")
    story_metrics: tuple[str, ...] = ("views", "reach", "replies", "shares")
    account_metrics: tuple[str, ...] = (
        "reach",
        "follower_count",
        "profile_views",
        "website_clicks",
        "views",
    )
    page_size: int = GRAPH_MAX_PAGE_SIZE  # media per listing page (Graph's largest `limit`)
    batch_size: int = GRAPH_BATCH_LIMIT
    # Pagination cap per listing: exceeding it raises INVALID_RESPONSE, never loops forever.
    max_pages: int = 200
    usage_slowdown_pct: float = 80.0
    usage_max_pause_s: float = 60.0
    retry: RetryConfig = field(default_factory=RetryConfig)
    # Validation and `api_root` come from GraphSettings.

    def metrics_of(self, family: str) -> tuple[str, ...]:
        return {
            MediaFamily.FEED: self.feed_metrics,
            MediaFamily.REEL: self.reel_metrics,
            MediaFamily.STORY: self.story_metrics,
        }[family]


def classify_response(response: Any) -> PlatformError | None:
    """`graph.classify_response` for Instagram: the `ApiSession` classifier."""
    return graph.classify_response(response, platform=GRAPH_PLATFORM)


def create_session(
    settings: InstagramSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    http: Any = None,
) -> ApiSession:
    """The `ApiSession` an InstagramClient uses (Graph classifier + usage throttle)."""
    return graph.create_graph_session(GRAPH_PLATFORM, settings, sleep=sleep, http=http)


def _invalid(message: str) -> PlatformError:
    return graph.invalid_response(PLATFORM, message)


# --------------------------------------------------------------------------- parsing


def _upper(value: Any) -> str:
    return value.upper() if isinstance(value, str) else ""


def media_format(media: Mapping[str, Any]) -> ContentFormat:
    """| media_product_type / media_type | format   |
    |---------------------------------|----------|
    | REELS                           | REEL     |
    | STORY                           | STORY    |
    | CAROUSEL_ALBUM                  | CAROUSEL |
    | VIDEO (feed)                    | VIDEO    |
    | IMAGE, or anything else         | POST     |
    """
    product, kind = _upper(media.get("media_product_type")), _upper(media.get("media_type"))
    if product == "REELS":
        return ContentFormat.REEL
    if product == "STORY":
        return ContentFormat.STORY
    if kind == "CAROUSEL_ALBUM":
        return ContentFormat.CAROUSEL
    if kind == "VIDEO":
        return ContentFormat.VIDEO
    return ContentFormat.POST


def media_family(media: Mapping[str, Any]) -> str:
    """The metric list a media gets: REELS -> REEL, STORY -> STORY, the rest (FEED, AD) FEED."""
    fmt = media_format(media)
    if fmt is ContentFormat.REEL:
        return MediaFamily.REEL
    if fmt is ContentFormat.STORY:
        return MediaFamily.STORY
    return MediaFamily.FEED


def media_scope(media: Mapping[str, Any]) -> str:
    """What Instagram accepts or rejects a metric for: `media_type/media_product_type`, e.g.
    "VIDEO/FEED" (a legacy feed video), "IMAGE/FEED", "CAROUSEL_ALBUM/FEED", "VIDEO/REELS",
    "IMAGE/STORY" ("UNKNOWN" for a field the reply lacks)."""
    kind, product = _upper(media.get("media_type")), _upper(media.get("media_product_type"))
    return f"{kind or 'UNKNOWN'}/{product or 'UNKNOWN'}"


def _timestamp(media: Mapping[str, Any]) -> dt.datetime:
    return graph.parse_graph_time(media.get("timestamp"), platform=PLATFORM, name="timestamp")


def parse_media(media: Any) -> ContentItem:
    """One element of `/media` or `/stories` `data` as a ContentItem."""
    if not isinstance(media, dict) or not isinstance(media.get("id"), str) or not media["id"]:
        raise _invalid(f"media without an id: {graph.excerpt(repr(media))}")
    raw_caption = media.get("caption")
    caption = raw_caption if isinstance(raw_caption, str) else None
    permalink = media.get("permalink")
    return ContentItem(
        external_content_id=media["id"],
        format=media_format(media),
        published_at=_timestamp(media),
        caption=caption,
        hashtags=extract_hashtags(caption),
        permalink=permalink if isinstance(permalink, str) else None,
    )


def _lifetime_value(entry: Mapping[str, Any]) -> Any:
    values = entry.get("values")
    if isinstance(values, list) and values and isinstance(values[-1], dict):
        return values[-1].get("value")
    total = entry.get("total_value")  # some versions answer media metrics as totals
    return total.get("value") if isinstance(total, dict) else None


def parse_media_insights(
    media_id: str, body: Mapping[str, Any], metric_order: Sequence[str] = ()
) -> ContentMetrics:
    """`/{media-id}/insights` as ContentMetrics: an empty `data` list (not computed yet) or a
    metric missing from it -> NULL; a returned 0 -> 0."""
    by_name = graph.insights_by_name(body.get("data"), _lifetime_value)
    columns: dict[str, int | None] = {}
    for name in [*metric_order, *(n for n in by_name if n not in metric_order)]:
        column = MEDIA_METRIC_COLUMNS.get(name)
        if name not in by_name:
            continue
        if column is None:
            logger.debug("ignoring unmapped instagram metric %r", name)
        elif columns.get(column) is None:
            columns[column] = as_int(by_name[name])
    return ContentMetrics(
        external_content_id=media_id, value_kind=ValueKind.LIFETIME_SNAPSHOT, **columns
    )


def _no_data(media_id: str) -> ContentMetrics:
    return ContentMetrics(external_content_id=media_id, value_kind=ValueKind.LIFETIME_SNAPSHOT)


def parse_account_insights(body: Mapping[str, Any], day: dt.date) -> dict[str, int | None]:
    """`/{ig-user-id}/insights` (time series or total_value) as AccountMetrics columns.

    A time-series entry gives the value whose Pacific `end_time` maps to `day`; a total_value
    entry gives its total (the request asked for exactly that day)."""
    columns: dict[str, int | None] = {}
    data = body.get("data")
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        column = ACCOUNT_METRIC_COLUMNS.get(entry["name"])
        if column is None:
            logger.debug("ignoring unmapped instagram account metric %r", entry["name"])
            continue
        total = entry.get("total_value")
        if isinstance(total, dict):
            value = as_int(total.get("value"))
        else:
            value = graph.daily_value(entry, day, platform=PLATFORM)
        if columns.get(column) is None:
            columns[column] = value
    return columns


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class _MediaInfo:
    family: str  # which metric list (MediaFamily)
    scope: str  # what a metric is rejected for (media_scope)
    timestamp: dt.datetime


def _media_info(media: Mapping[str, Any], timestamp: dt.datetime) -> _MediaInfo:
    return _MediaInfo(media_family(media), media_scope(media), timestamp)


def _info_ask(media_id: str) -> Ask[_MediaInfo]:
    def parse(body: Mapping[str, Any]) -> _MediaInfo:
        return _media_info(body, _timestamp(body))

    return Ask(
        key=media_id, url=lambda _ms: f"{_quote_id(media_id)}?fields={_INFO_FIELDS}", parse=parse
    )


def _quote_id(object_id: str) -> str:
    return quote(object_id, safe="")


_ACCOUNT_FAMILY = "account:"  # prefix of the account insights' families


def _is_media_scope(family: str) -> bool:
    return not family.startswith(_ACCOUNT_FAMILY)


class InstagramClient(SessionClient):
    """Instagram professional accounts: `external_account_id` is the IG user id."""

    platform = PLATFORM
    content_metrics_are_lifetime = True

    def __init__(
        self,
        settings: InstagramSettings,
        account: Account,
        *,
        session: ApiSession | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        """A client for the IG user of `account`. `session` defaults to
        `create_session(settings, sleep=sleep)`; `clock` (aware UTC) decides which stories are
        still live and which days follower_count still covers."""
        super().__init__(account)
        self.settings = settings
        self._session = session or create_session(settings, sleep=sleep)
        self._clock = clock
        self._graph = GraphApi.for_settings(GRAPH_PLATFORM, self._session, settings, account.token)
        self._media: dict[str, _MediaInfo] = {}  # media id -> type and time, as learned

    @property
    def rejected_metrics(self) -> tuple[str, ...]:
        """Media insights rejected so far, per media type (see `GraphApi.rejection_report`)."""
        return self._graph.rejection_report(_is_media_scope)

    def token_status(self) -> TokenStatus:
        """The token's limits from `debug_token`, in ONE batch call (see `graph_token`)."""
        return read_token_status(self._graph, self.account.token)

    def describe_account(self) -> AccountDescription:
        """`GET /{ig-user-id}?fields=id,username,name,followers_count`. A Facebook Page id has
        no `username`: Graph's "nonexisting field (username) on node type (Page)" is reported
        as such (PERMANENT_CONFIG "wrong_account_kind")."""
        user_id = self.account.external_account_id
        body = read_account_node(
            self._graph,
            user_id,
            "id,username,name,followers_count",
            node_type="IGUser",
            expected="the page's instagram_business_account id (GET /{page-id}"
            "?fields=instagram_business_account)",
        )
        username = text_field(body, "username")
        if username is None:
            raise _invalid(f"Instagram account {user_id} answered without a username")
        return AccountDescription(user_id, text_field(body, "name") or username, f"@{username}")

    # ---- listing

    def list_content_between(self, start: dt.date, end: dt.date) -> Iterator[ContentItem]:
        """Media and stories published on the UTC days `start`..`end`: one walk of `/media`
        from the newest item down to the first page that ends before `start` (the edge has
        no time filter), then `/stories`, which only serves live stories: a range's older
        stories are gone, exactly as for a one-day listing."""
        days_between(start, end)  # validates the range
        since = day_start(start)
        until = day_start(end + dt.timedelta(days=1))
        seen: set[str] = set()
        for edge in ("media", "stories"):
            for item in self._list_edge(edge, start, end):
                if item.external_content_id in seen:
                    continue
                seen.add(item.external_content_id)
                if since <= item.published_at < until:
                    yield item

    def _list_edge(self, edge: str, start: dt.date, end: dt.date) -> Iterator[ContentItem]:
        """Every item of `/media` or `/stories` down to the first page that ends before
        `start` (both edges are newest first); remembers each item's type for the metrics
        call."""
        user = _quote_id(self.account.external_account_id)
        url = f"{self.settings.api_root}/{user}/{edge}"
        params = {"fields": MEDIA_FIELDS, "limit": self.settings.page_size}
        floor = day_start(start)
        span = str(start) if start == end else f"{start}..{end}"
        what = f"{edge} of instagram account {self.account.external_account_id} down to {span}"
        pages = self._graph.iter_pages(url, params, what)
        for body in pages:
            items = [parse_media(raw) for raw in self._graph.data_list(body, edge)]
            for raw, item in zip(body["data"], items, strict=True):
                self._media[item.external_content_id] = _media_info(raw, item.published_at)
                yield item
            if items and items[-1].published_at < floor:
                pages.close()  # the rest is older still
                return

    # ---- content metrics

    def fetch_content_metrics(
        self,
        content_ids: Sequence[str],
        day: dt.date,
        *,
        permalinks: Mapping[str, str | None] | None = None,
    ) -> MetricsBatch:
        """Lifetime insights as of now, batched per media type: ceil(n / batch_size) calls,
        plus ceil(unknown / batch_size) type reads for media this client has not listed."""
        ids = list(dict.fromkeys(content_ids))
        skipped: list[SkippedObject] = []
        unknown = [i for i in ids if i not in self._media]
        if unknown:
            skipped.extend(self._learn_media(unknown))
        now = self._clock()
        asks: list[Ask[ContentMetrics]] = []
        for media_id in ids:
            info = self._media.get(media_id)
            if info is None:
                continue
            if info.family == MediaFamily.STORY and now - info.timestamp >= STORY_LIFETIME:
                logger.debug("story %s expired: its insights are gone, not asked", media_id)
                continue
            asks.append(self._insights_ask(media_id, info))
        outcomes = self._graph.run(asks)
        metrics: dict[str, ContentMetrics] = {}
        for media_id in ids:
            outcome = outcomes.get(media_id)
            if isinstance(outcome, ContentMetrics):
                metrics[media_id] = outcome
            elif isinstance(outcome, NotEnoughViewersError):
                metrics[media_id] = _no_data(media_id)
            elif isinstance(outcome, PlatformError):
                skipped.append(SkippedObject(media_id, outcome.code or "unknown", outcome.message))
        return MetricsBatch(
            metrics=tuple(metrics[i] for i in ids if i in metrics),
            skipped=tuple(skipped),
            rejected_metrics=self.rejected_metrics,
        )

    def _learn_media(self, media_ids: Sequence[str]) -> list[SkippedObject]:
        """Read the type and time of media listed by an earlier run (one batch per 50)."""
        skipped: list[SkippedObject] = []
        outcomes = self._graph.run([_info_ask(media_id) for media_id in media_ids])
        for media_id, outcome in outcomes.items():
            if isinstance(outcome, _MediaInfo):
                self._media[str(media_id)] = outcome
            elif isinstance(outcome, PlatformError):
                skipped.append(
                    SkippedObject(str(media_id), outcome.code or "unknown", outcome.message)
                )
        return skipped

    def _insights_ask(self, media_id: str, info: _MediaInfo) -> Ask[ContentMetrics]:
        order = self.settings.metrics_of(info.family)
        return Ask(
            key=media_id,
            url=lambda ms: f"{_quote_id(media_id)}/insights?metric={','.join(ms)}",
            parse=lambda body: parse_media_insights(media_id, body, order),
            metrics=order,
            family=info.scope,  # a rejected metric is dropped for this media type only
            metrics_required=True,
        )

    # ---- account metrics

    def fetch_account_metrics_between(
        self, start: dt.date, end: dt.date, *, snapshot_day: dt.date | None
    ) -> dict[dt.date, AccountMetrics]:
        """Account-level metrics of the days `start`..`end` (see the module docstring) in
        ceil(items / batch_size) batch calls:

        - the `followers_count` snapshot item, when `snapshot_day` is in the range;
        - one time-series item (reach, and follower_count for the days it covers) per run of
          at most `SERIES_CHUNK_DAYS` days: Graph serves at most 30 days per since/until,
          and each item reaches one day past its last day (the Pacific `end_time`);
        - one `metric_type=total_value` item per day (a total cannot be split into days).

        E.g. the 90 days up to yesterday with a snapshot: 1 + 4 + 90 = 95 items, 2 batch
        calls (one a day before)."""
        days = days_between(start, end)
        user = _quote_id(self.account.external_account_id)
        asks: list[Ask[Any]] = []
        if snapshot_day is not None and start <= snapshot_day <= end:
            asks.append(
                Ask(
                    key="snapshot",
                    url=lambda _ms: f"{user}?fields=followers_count",
                    parse=lambda body: as_int(body.get("followers_count")),
                )
            )
        today = self._clock().date()
        for metrics, run in self._series_runs(days, today):
            for offset in range(0, len(run), SERIES_CHUNK_DAYS):
                chunk = run[offset : offset + SERIES_CHUNK_DAYS]
                # Two days past the last one, so its Pacific end_time is in the reply.
                since, until = day_start(chunk[0]), day_start(chunk[-1] + dt.timedelta(days=2))
                asks.append(self._account_ask(user, "series", metrics, {}, since, until, chunk))
        totals = tuple(
            m for m in self.settings.account_metrics if m not in TIME_SERIES_ACCOUNT_METRICS
        )
        if totals:
            for day in days:
                since, until = day_start(day), day_start(day + dt.timedelta(days=1))
                extra = {"metric_type": "total_value"}
                asks.append(self._account_ask(user, "totals", totals, extra, since, until, [day]))
        outcomes = self._graph.run(asks)
        columns: dict[dt.date, dict[str, int | None]] = {day: {} for day in days}
        for ask in asks:  # series before totals: a series value wins (as for one day)
            outcome = outcomes.get(ask.key)
            if isinstance(outcome, PlatformError):
                raise outcome  # the account itself is gone
            if ask.key == "snapshot":
                continue
            for day, found in (outcome or {}).items():
                for column, value in found.items():
                    if columns[day].get(column) is None:
                        columns[day][column] = value
        snapshot = outcomes.get("snapshot")
        followers = snapshot if isinstance(snapshot, int) else None
        rejected = (
            *self._graph.rejected("account:series"),
            *self._graph.rejected("account:totals"),
        )
        return {
            day: AccountMetrics(
                followers_total=followers if day == snapshot_day else None,
                rejected_metrics=rejected,
                **columns[day],
            )
            for day in days
        }

    def _series_runs(
        self, days: Sequence[dt.date], today: dt.date
    ) -> list[tuple[tuple[str, ...], list[dt.date]]]:
        """Consecutive days grouped by the time-series metrics asked for them: follower_count
        only for the last `FOLLOWER_COUNT_DAYS` days (not older: Graph refuses it)."""
        runs: list[tuple[tuple[str, ...], list[dt.date]]] = []
        for day in days:
            age = (today - day).days
            metrics = tuple(
                m
                for m in self.settings.account_metrics
                if m in TIME_SERIES_ACCOUNT_METRICS
                and (m != "follower_count" or 0 <= age < FOLLOWER_COUNT_DAYS)
            )
            if not metrics:
                continue
            if runs and runs[-1][0] == metrics and runs[-1][1][-1] == day - dt.timedelta(days=1):
                runs[-1][1].append(day)
            else:
                runs.append((metrics, [day]))
        return runs

    @staticmethod
    def _account_ask(
        user: str,
        key: str,
        metrics: tuple[str, ...],
        extra: Mapping[str, str],
        since: dt.datetime,
        until: dt.datetime,
        days: Sequence[dt.date],
    ) -> Ask[dict[dt.date, dict[str, int | None]]]:
        def url(names: Sequence[str]) -> str:
            query = {
                "metric": ",".join(names),
                **extra,
                "period": "day",
                "since": unix(since),
                "until": unix(until),
            }
            return f"{user}/insights?{urlencode(query, safe=',')}"

        return Ask(
            key=(key, days[0]),
            url=url,
            parse=lambda body: {day: parse_account_insights(body, day) for day in days},
            metrics=metrics,
            family=f"{_ACCOUNT_FAMILY}{key}",
            metrics_required=True,
        )
