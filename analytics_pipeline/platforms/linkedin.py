"""LinkedIn organization pages through the Community Management REST API.

Wire format (the sandbox serves exactly this). Every request goes to `{base}/rest/...` with the
headers `LinkedIn-Version: YYYYMM` (the configured `api_version`) and
`X-Restli-Protocol-Version: 2.0.0`; the token only travels in `Authorization: Bearer`.

- Posts: `GET /rest/posts?author={org-urn}&q=author&count=N&start=K&sortBy=CREATED`, newest
  created first, paged by `start`/`count` until a page is short, `paging.total` is reached, or
  the posts are older than the day (with a page cap). Post ids are share or ugcPost URNs.
- Post statistics: `GET /rest/organizationalEntityShareStatistics?q=organizationalEntity&
  organizationalEntity={org-urn}&shares=List(..)&ugcPosts=List(..)&timeIntervals=(timeRange:
  (start:<ms>,end:<ms>),timeGranularityType:DAY)`: one element per post per UTC day, keyed by
  `share` or `ugcPost`. These are TRUE per-day values (`ValueKind.DAILY`), so
  `content_metrics_are_lifetime` is False and any past day can be (re)fetched.
- Account: `GET /rest/networkSizes/{org-urn}?edgeType=COMPANY_FOLLOWED_BY_MEMBER` (follower
  total, a snapshot), `organizationalEntityFollowerStatistics`, `organizationPageStatistics` and
  `organizationalEntityShareStatistics` without a post list, each ONCE for a whole range of
  days: one DAY-granularity interval from the first day's midnight to the midnight after the
  last (LinkedIn answers an element per UTC day; its only range limit is the rolling 12
  months, so no further chunking).
- A range of days is listed with ONE walk of the posts finder (it has no time filter), down to
  `created_slack_days` before the range's first day.

Rest.li 2.0 query encoding: structure characters `( ) , :` and `List(...)` stay literal, every
value inside (URNs) is percent-encoded, so `urn:li:share:1` travels as `urn%3Ali%3Ashare%3A1`.
The query string is therefore built here, not by `requests` (which would encode the structure).

Statistics only exist for a rolling 12 months (LinkedIn answers 400 to an older start). A day
outside that window is not an error: it is clamped BEFORE any call (empty result, logged); see
`earliest_statistics_day`.

Post statistics chunking: `stats_chunk_size` (default 50) URNs per call. LinkedIn documents no
cap on the lists, but they travel in the URL: 50 encoded URNs are ~2 KB, well under the ~8 KB
URL limit of LinkedIn's front end (beyond it Rest.li needs query tunnelling), while a 28-day
window of a busy page (5 posts a day = 140 posts) still costs only 3 calls of the daily quota.

Metric mapping (post statistics, `totalShareStatistics`):

| LinkedIn field          | ContentMetrics | note                                              |
|-------------------------|----------------|---------------------------------------------------|
| impressionCount         | impressions    |                                                   |
| uniqueImpressionsCount  | reach          | unique members reached                            |
| clickCount              | clicks         | clicks on the post (content, company name, logo)  |
| likeCount               | likes          | LinkedIn counts every reaction type as a like     |
| commentCount            | comments       |                                                   |
| shareCount              | shares         | reposts                                           |
| (none)                  | reactions      | NULL: no per-type reaction totals in this API     |
| (none)                  | views          | NULL: LinkedIn has no per-post media views        |
| (none)                  | video_views    | NULL: only a separate, lifetime-only video        |
|                         |                |   analytics API has them (not a per-day value)    |
| (none)                  | saves          | NULL: LinkedIn exposes no save counts             |
| engagement              | -              | a ratio, not a count: not stored                  |

Account metrics (`AccountMetrics`, all per UTC day except the follower total):

| source                                                  | column          |
|---------------------------------------------------------|-----------------|
| networkSizes `firstDegreeSize` (snapshot day only)      | followers_total |
| follower statistics organicFollowerGain + paidFollowerGain | new_followers |
| page statistics `views.allPageViews.pageViews`          | profile_views   |
| org share statistics impressionCount                    | impressions     |
| org share statistics uniqueImpressionsCount             | reach           |
| (none): LinkedIn has no page-level media views          | views = NULL    |
| (none): share clickCount counts clicks on posts, not on | website_clicks  |
|   the page's website button                             |   = NULL        |

Errors are classified by LinkedIn's `code` / `serviceErrorCode` first, HTTP status second; see
`classify_response`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from analytics_pipeline.platforms.base import (
    Account,
    AccountDescription,
    PlatformError,
    TokenExchange,
    days_between,
)
from analytics_pipeline.platforms.common import (
    SessionClient,
    as_int,
    capped_pages,
    day_start,
    excerpt,
    invalid_response,
    is_transient_status,
    json_or_none,
    status_error,
    utc_now,
)
from analytics_pipeline.platforms.http import ApiSession, RetryConfig, safe_url
from analytics_pipeline.platforms.oauth import TokenEndpoint, token_exchange
from analytics_pipeline.platforms.redact import redact, redacting_logger
from analytics_pipeline.platforms.text import extract_hashtags
from analytics_pipeline.records import (
    AccountMetrics,
    ContentFormat,
    ContentItem,
    ContentMetrics,
    ErrorClass,
    MetricsBatch,
    SkippedObject,
    ValueKind,
)

__all__ = [
    "ACCOUNT_METRIC_SOURCES",
    "POST_METRIC_COLUMNS",
    "VERSION_SETTING",
    "LinkedInClient",
    "LinkedInSettings",
    "classify_error_body",
    "classify_response",
    "commentary_hashtags",
    "create_session",
    "detect_format",
    "earliest_statistics_day",
    "parse_post",
    "parse_share_statistics",
    "render_commentary",
    "restli_encode",
    "seconds_until_utc_midnight",
    "time_interval",
]

PLATFORM = "linkedin"
VERSION_SETTING = "ANALYTICS_LINKEDIN_API_VERSION"
logger = redacting_logger("analytics_pipeline.platforms.linkedin")

# Our configuration is wrong for every account (sunset API version, malformed account URN).
CONFIG_ERROR = ErrorClass.PERMANENT_CONFIG

# totalShareStatistics field -> ContentMetrics column.
POST_METRIC_COLUMNS: Mapping[str, str] = {
    "impressionCount": "impressions",
    "uniqueImpressionsCount": "reach",
    "clickCount": "clicks",
    "likeCount": "likes",
    "commentCount": "comments",
    "shareCount": "shares",
}
# AccountMetrics column -> the statistics finder that provides it.
ACCOUNT_METRIC_SOURCES: Mapping[str, str] = {
    "new_followers": "organizationalEntityFollowerStatistics",
    "profile_views": "organizationPageStatistics",
    "impressions": "organizationalEntityShareStatistics",
    "reach": "organizationalEntityShareStatistics",
}

MAX_PAGE_SIZE = 100  # the posts finder's largest `count`
MAX_STATS_CHUNK = 100
_DAY_MS = 86_400_000
_VERSION_RE = re.compile(r"(?P<year>20\d\d)(?P<month>\d\d)(?:\.\d\d)?")
_ORG_URN_RE = re.compile(r"urn:li:(?:organization|organizationBrand):\d+")
_POST_URN_RE = re.compile(r"urn:li:(?P<kind>share|ugcPost):[0-9A-Za-z_-]+")
_PUBLISHED_STATES = frozenset({"PUBLISHED", "PUBLISHED_EDITED"})

# LinkedIn error codes (https://learn.microsoft.com/linkedin/shared/api-guide/concepts/
# error-handling and the bodies the API really sends, e.g. {"status":401,"serviceErrorCode":
# 65602,"code":"EXPIRED_ACCESS_TOKEN","message":"The token used in the request has expired"}).
_VERSION_CODES = frozenset({"NONEXISTENT_VERSION", "VERSION_MISSING", "INVALID_VERSION"})
_TOKEN_CODES = frozenset(
    {"EXPIRED_ACCESS_TOKEN", "REVOKED_ACCESS_TOKEN", "INVALID_ACCESS_TOKEN", "UNAUTHORIZED"}
)
_TOKEN_SERVICE_CODES = range(65600, 65610)  # 65600 invalid, 65601 revoked, 65602 expired, ...
_PERMISSION_CODES = frozenset({"ACCESS_DENIED", "FORBIDDEN"})
_THROTTLE_CODES = frozenset({"TOO_MANY_REQUESTS", "THROTTLED"})
_THROTTLE_SERVICE_CODE = 101
_NOT_FOUND_CODES = frozenset({"NOT_FOUND", "RESOURCE_NOT_FOUND"})
# "Resource level throttle APPLICATION DAY limit for calls to this resource is reached."
_DAILY_LIMIT = re.compile(r"\bDAY\s+limit\b|\bdaily\b", re.IGNORECASE)


@dataclass(frozen=True)
class LinkedInSettings:
    base_url: str = "https://api.linkedin.com"
    # The OAuth host (token endpoint), not the API host.
    oauth_base_url: str = "https://www.linkedin.com"
    # A month LinkedIn supports (each version lives about a year); 202609 = September 2026.
    api_version: str = "202609"
    post_metrics: tuple[str, ...] = tuple(POST_METRIC_COLUMNS)
    account_metrics: tuple[str, ...] = tuple(ACCOUNT_METRIC_SOURCES)
    page_size: int = MAX_PAGE_SIZE  # posts per listing page (fewer pages per range listing)
    # Pagination cap per listing: exceeding it raises INVALID_RESPONSE, never loops forever.
    max_pages: int = 200
    stats_chunk_size: int = 50  # post URNs per statistics call (see the module docstring)
    # The listing is sorted by createdAt, but a scheduled post is published after it was
    # created: the walk goes on until posts were created this many days before the day.
    created_slack_days: int = 1
    retry: RetryConfig = field(default_factory=RetryConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
        if not 1 <= self.stats_chunk_size <= MAX_STATS_CHUNK:
            raise ValueError(f"stats_chunk_size must be 1..{MAX_STATS_CHUNK}")
        if self.max_pages < 1 or self.created_slack_days < 0:
            raise ValueError("max_pages must be >= 1 and created_slack_days >= 0")
        if not _valid_version(self.api_version):
            raise ValueError(f"api_version must look like 202609, got {self.api_version!r}")
        unknown = [m for m in self.post_metrics if m not in POST_METRIC_COLUMNS]
        if unknown:
            raise ValueError(f"unknown post metrics {unknown}; known: {list(POST_METRIC_COLUMNS)}")
        unknown = [m for m in self.account_metrics if m not in ACCOUNT_METRIC_SOURCES]
        if unknown:
            raise ValueError(
                f"unknown account metrics {unknown}; known: {list(ACCOUNT_METRIC_SOURCES)}"
            )

    @property
    def api_root(self) -> str:
        return f"{self.base_url.rstrip('/')}/rest"


def token_endpoint(settings: LinkedInSettings) -> TokenEndpoint:
    """LinkedIn's OAuth 2.0 token endpoint (refresh tokens of approved apps)."""
    url = f"{settings.oauth_base_url.rstrip('/')}/oauth/v2/accessToken"
    return TokenEndpoint(PLATFORM, url, "body")


def _valid_version(version: str) -> bool:
    match = _VERSION_RE.fullmatch(version)
    return match is not None and 1 <= int(match["month"]) <= 12


# --------------------------------------------------------------------------- time helpers


def epoch_ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def earliest_statistics_day(today: dt.date) -> dt.date:
    """The oldest UTC day whose statistics LinkedIn still serves on `today` (UTC).

    LinkedIn keeps a rolling 12 months and checks the request's start timestamp against "now
    minus 12 months". The midnight of the same calendar day a year ago is already past that
    limit at any time of `today`, so the window starts the day after it.
    """
    try:
        year_ago = today.replace(year=today.year - 1)
    except ValueError:  # 29 February
        year_ago = today.replace(year=today.year - 1, day=28)
    return year_ago + dt.timedelta(days=1)


def seconds_until_utc_midnight(now: dt.datetime) -> float:
    """When LinkedIn's daily quotas reset (00:00 UTC), in seconds from `now` (at least 1)."""
    now = now.astimezone(dt.UTC)
    midnight = day_start(now.date() + dt.timedelta(days=1))
    return max(1.0, (midnight - now).total_seconds())


# --------------------------------------------------------------------------- Rest.li encoding


def restli_encode(value: Any) -> str:
    """A value in Rest.li 2.0 query syntax: strings percent-encoded (also `( ) , : '`), lists as
    `List(a,b)`, records as `(key:value,...)`, integers as digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return quote(value, safe="")
    if isinstance(value, Mapping):
        return (
            "("
            + ",".join(f"{quote(str(k), safe='')}:{restli_encode(v)}" for k, v in value.items())
            + ")"
        )
    if isinstance(value, list | tuple):
        return "List(" + ",".join(restli_encode(v) for v in value) + ")"
    raise TypeError(f"cannot encode {type(value).__name__} in Rest.li syntax")


def time_interval(day: dt.date, last: dt.date | None = None) -> dict[str, Any]:
    """The `timeIntervals` value for the UTC days `day`..`last` (default: `day` alone) at DAY
    granularity: LinkedIn answers one element per day of it."""
    start = epoch_ms(day_start(day))
    end = epoch_ms(day_start((last or day) + dt.timedelta(days=1)))
    return {"timeRange": {"start": start, "end": end}, "timeGranularityType": "DAY"}


def _query(params: Sequence[tuple[str, Any]]) -> str:
    return "&".join(f"{name}={restli_encode(value)}" for name, value in params)


# --------------------------------------------------------------------------- error handling


def _invalid(message: str) -> PlatformError:
    return invalid_response(PLATFORM, message)


def classify_error_body(
    body: Mapping[str, Any],
    *,
    http_status: int,
    api_version: str,
    now: dt.datetime | None = None,
) -> PlatformError:
    """Classify a LinkedIn error body, by `code` / `serviceErrorCode` first:

    | code / serviceErrorCode / status                   | class                           |
    |----------------------------------------------------|---------------------------------|
    | NONEXISTENT_VERSION, VERSION_MISSING, HTTP 426     | PERMANENT_CONFIG (sunset version)|
    | EXPIRED/REVOKED/INVALID_ACCESS_TOKEN, 65600-65609, | PERMANENT_CREDENTIAL            |
    |   HTTP 401                                         |                                 |
    | ACCESS_DENIED, HTTP 403 (admin role / scope)       | PERMANENT_CREDENTIAL            |
    | TOO_MANY_REQUESTS / 101 / HTTP 429 with "DAY limit"| TRANSIENT, retry_after = seconds|
    |   (daily quota, resets 00:00 UTC)                  |   to the next UTC midnight      |
    | other 429 (short infrastructure throttle), 5xx,408 | TRANSIENT (Retry-After honoured)|
    | NOT_FOUND, HTTP 404 / 410                          | PERMANENT_OBJECT                |
    | anything else (400 bad request, ...)               | INVALID_RESPONSE: a bug on our  |
    |                                                    |   side, never retried           |
    """
    code = body.get("code") if isinstance(body.get("code"), str) else None
    service = as_int(body.get("serviceErrorCode"))
    status = as_int(body.get("status")) or http_status
    raw_message = body.get("message")
    message = redact(str(raw_message)) if raw_message is not None else "(no message)"
    code_text = code or (str(service) if service is not None else f"http_{status}")

    def make(error_class: ErrorClass, text: str) -> PlatformError:
        return PlatformError(
            error_class, redact(text), platform=PLATFORM, code=code_text, http_status=http_status
        )

    if code in _VERSION_CODES or http_status == 426 or status == 426:
        return make(
            CONFIG_ERROR,
            f"LinkedIn rejected API version {api_version!r} ({message}): set "
            f"{VERSION_SETTING} to a supported YYYYMM version (LinkedIn sunsets each version "
            "about a year after its release).",
        )
    if (
        code in _TOKEN_CODES
        or (service is not None and service in _TOKEN_SERVICE_CODES)
        or http_status == 401
    ):
        return make(
            ErrorClass.PERMANENT_CREDENTIAL,
            f"access token rejected ({message}); re-authorize the LinkedIn integration",
        )
    if code in _PERMISSION_CODES or http_status == 403:
        return make(
            ErrorClass.PERMANENT_CREDENTIAL,
            f"permission denied ({message}); the member who authorized the token needs the "
            "ADMINISTRATOR role on the page and the rw_organization_admin / "
            "r_organization_social scopes",
        )
    throttled = code in _THROTTLE_CODES or service == _THROTTLE_SERVICE_CODE or http_status == 429
    if throttled and _DAILY_LIMIT.search(message):
        wait = seconds_until_utc_midnight(now or utc_now())
        error = make(
            ErrorClass.TRANSIENT,
            f"daily quota exhausted ({message}); LinkedIn resets it at 00:00 UTC, "
            f"in {wait:.0f} s: deferred to the next run",
        )
        error.code = "daily_quota"
        error.retry_after = wait
        return error
    if throttled or http_status >= 500 or http_status == 408:
        return make(ErrorClass.TRANSIENT, message)
    if code in _NOT_FOUND_CODES or http_status in (404, 410):
        return make(ErrorClass.PERMANENT_OBJECT, message)
    return make(ErrorClass.INVALID_RESPONSE, f"HTTP {http_status}: {message}")


def classify_response(
    response: requests.Response, *, api_version: str, now: dt.datetime | None = None
) -> PlatformError | None:
    """`ApiSession` classifier: None for a usable JSON reply, else the classified error.

    A JSON error body goes through `classify_error_body`; a non-JSON 5xx/408/429 (a proxy's
    HTML page) is TRANSIENT; any other non-2xx, or a 2xx that is not JSON, is INVALID_RESPONSE
    with a short redacted excerpt."""
    status = response.status_code
    body = json_or_none(response)
    if 200 <= status < 300:
        if body is not None:
            return None
    elif isinstance(body, dict):
        return classify_error_body(body, http_status=status, api_version=api_version, now=now)
    elif status == 426:
        return classify_error_body({}, http_status=status, api_version=api_version, now=now)
    error_class = (
        ErrorClass.TRANSIENT if is_transient_status(status) else ErrorClass.INVALID_RESPONSE
    )
    text = f"HTTP {status} non-JSON reply: {excerpt(response.text or '')}"
    return status_error(error_class, PLATFORM, status, text)


def create_session(
    settings: LinkedInSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    http: requests.Session | None = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> ApiSession:
    """The `ApiSession` a LinkedInClient uses. LinkedIn sends no usage headers: no throttle."""

    def classify(response: requests.Response) -> PlatformError | None:
        return classify_response(response, api_version=settings.api_version, now=clock())

    return ApiSession(PLATFORM, classify, settings.retry, sleep=sleep, session=http)


# --------------------------------------------------------------------------- posts

# `{hashtag|\#|Name}` (the `#` may come unescaped from older posts).
_HASHTAG = re.compile(r"\{hashtag\|\\?[#\uff03]\|((?:[^{}|\\]|\\.)*)\}")
# `@[Display Name](urn:li:organization:123)`
_MENTION = re.compile(r"@\[((?:[^\]\\]|\\.)*)\]\((urn:li:[^)\s]+)\)")
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _unescape(text: str) -> str:
    """LinkedIn "little text" escapes reserved characters with a backslash: `\\(` -> `(`."""
    return _ESCAPE.sub(r"\1", text)


def render_commentary(commentary: str) -> str:
    """The commentary as people read it: `{hashtag|\\#|Name}` -> `#Name`, `@[Name](urn)` ->
    `Name`, backslash escapes removed."""
    parts: list[str] = []
    position = 0
    for match in re.finditer(f"{_HASHTAG.pattern}|{_MENTION.pattern}", commentary):
        parts.append(_unescape(commentary[position : match.start()]))
        if match.group(1) is not None:
            parts.append("#" + _unescape(match.group(1)))
        else:
            parts.append(_unescape(match.group(2)))
        position = match.end()
    parts.append(_unescape(commentary[position:]))
    return "".join(parts)


def commentary_hashtags(commentary: str | None) -> tuple[str, ...]:
    """Hashtags of a commentary, normalized like `text.extract_hashtags`, in order of first
    appearance: the `{hashtag|\\#|Name}` markup and plain `#tags` typed as text alike.

    Markup tags are spaced apart before extraction, so `word{hashtag|\\#|Tag}` still counts (it
    renders as a linked tag on LinkedIn), and mentions are blanked out."""
    if not commentary:
        return ()
    spaced = _HASHTAG.sub(lambda m: f" #{_unescape(m.group(1))} ", commentary)
    spaced = _MENTION.sub(" ", spaced)
    return extract_hashtags(_unescape(spaced))


def _media_kind(media: Mapping[str, Any]) -> str:
    media_id = media.get("id")
    if not isinstance(media_id, str):
        return ""
    parts = media_id.split(":")
    return parts[2] if len(parts) > 3 and parts[:2] == ["urn", "li"] else ""


def detect_format(post: Mapping[str, Any]) -> ContentFormat:
    """The format of a Posts API element, from its `content` (first matching row wins):

    | content                                          | format   |
    |--------------------------------------------------|----------|
    | multiImage, or carousel (sponsored)              | CAROUSEL |
    | media with a `urn:li:video:` id                  | VIDEO    |
    | media with a `urn:li:document:` id (PDF slides,  | CAROUSEL |
    |   what LinkedIn users call a carousel post)      |          |
    | media with a `urn:li:image:` id (or other media) | POST     |
    | article (a link with a preview card)             | LINK     |
    | poll                                             | TEXT     |
    | celebration (an image card)                      | POST     |
    | no content (text, or a reshare without its own   | TEXT     |
    |   media: a repost is text on top of another post)|          |
    | any other content kind                           | POST     |
    """
    content = post.get("content")
    if not isinstance(content, dict) or not content:
        return ContentFormat.TEXT
    if "multiImage" in content or "carousel" in content:
        return ContentFormat.CAROUSEL
    media = content.get("media")
    if isinstance(media, dict):
        kind = _media_kind(media)
        if kind == "video":
            return ContentFormat.VIDEO
        if kind == "document":
            return ContentFormat.CAROUSEL
        return ContentFormat.POST
    if "article" in content:
        return ContentFormat.LINK
    if "poll" in content:
        return ContentFormat.TEXT
    logger.debug("unknown LinkedIn content kinds %s; counted as POST", sorted(content))
    return ContentFormat.POST


def _epoch_ms_field(post: Mapping[str, Any], name: str) -> dt.datetime | None:
    value = as_int(post.get(name))
    if value is None or value < 0:
        return None
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC)


def _post_urn(post: Any) -> str:
    urn = post.get("id") if isinstance(post, dict) else None
    if not isinstance(urn, str) or not urn.startswith("urn:li:"):
        raise _invalid(f"post without a URN id: {excerpt(json.dumps(post, default=str))}")
    return urn


def created_at(post: Mapping[str, Any]) -> dt.datetime:
    """`createdAt` (the listing's sort key), or `publishedAt` when it is missing."""
    moment = _epoch_ms_field(post, "createdAt") or _epoch_ms_field(post, "publishedAt")
    if moment is None:
        raise _invalid(f"post {post.get('id')} has neither createdAt nor publishedAt")
    return moment


def parse_post(post: Any) -> ContentItem:
    """One element of the posts finder as a ContentItem (the URN is the content id; a repost,
    one with `reshareContext`, has `reference_type="reshare"`)."""
    urn = _post_urn(post)
    published = _epoch_ms_field(post, "publishedAt") or _epoch_ms_field(post, "createdAt")
    if published is None:
        raise _invalid(f"post {urn} has neither publishedAt nor createdAt (epoch ms)")
    commentary = post.get("commentary")
    caption = render_commentary(commentary) if isinstance(commentary, str) else None
    return ContentItem(
        external_content_id=urn,
        format=detect_format(post),
        published_at=published,
        caption=caption if caption else None,
        hashtags=commentary_hashtags(commentary if isinstance(commentary, str) else None),
        permalink=f"https://www.linkedin.com/feed/update/{urn}",
        reference_type="reshare" if isinstance(post.get("reshareContext"), dict) else None,
    )


def _is_published(post: Mapping[str, Any]) -> bool:
    state = post.get("lifecycleState")
    return state is None or state in _PUBLISHED_STATES


# --------------------------------------------------------------------------- statistics


def parse_share_statistics(
    stats: Any, metrics: Sequence[str] = tuple(POST_METRIC_COLUMNS)
) -> dict[str, int | None]:
    """`totalShareStatistics` as ContentMetrics columns: a field LinkedIn left out (or one not
    in `metrics`) is None, a 0 it sent is 0."""
    columns: dict[str, int | None] = dict.fromkeys(POST_METRIC_COLUMNS.values())
    if not isinstance(stats, dict):
        return columns
    for name in metrics:
        columns[POST_METRIC_COLUMNS[name]] = as_int(stats.get(name))
    return columns


def _elements(body: Mapping[str, Any], what: str) -> list[Mapping[str, Any]]:
    elements = body.get("elements")
    if not isinstance(elements, list) or not all(isinstance(e, dict) for e in elements):
        raise _invalid(f"{what} reply without an elements list: {excerpt(json.dumps(body))}")
    return elements


def _starts_on(element: Mapping[str, Any], day: dt.date) -> bool:
    time_range = element.get("timeRange")
    start = as_int(time_range.get("start")) if isinstance(time_range, dict) else None
    return start == epoch_ms(day_start(day))


def _start_day(element: Mapping[str, Any]) -> dt.date | None:
    """The UTC day a DAY-granularity element covers (None when its `timeRange.start` is not a
    UTC midnight in epoch ms)."""
    time_range = element.get("timeRange")
    start = as_int(time_range.get("start")) if isinstance(time_range, dict) else None
    if start is None or start % _DAY_MS:
        return None
    return dt.datetime.fromtimestamp(start / 1000, dt.UTC).date()


def _follower_gain(element: Mapping[str, Any]) -> int | None:
    gains = element.get("followerGains")
    if not isinstance(gains, dict):
        return None
    values = [as_int(gains.get(k)) for k in ("organicFollowerGain", "paidFollowerGain")]
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _page_views(element: Mapping[str, Any]) -> int | None:
    node: Any = element.get("totalPageStatistics")
    for key in ("views", "allPageViews", "pageViews"):
        node = node.get(key) if isinstance(node, dict) else None
    return as_int(node)


# --------------------------------------------------------------------------- the client


@dataclass
class _StatsResult:
    metrics: dict[str, ContentMetrics] = field(default_factory=dict)
    skipped: list[SkippedObject] = field(default_factory=list)


class LinkedInClient(SessionClient):
    """LinkedIn pages: `external_account_id` is the organization URN
    (`urn:li:organization:<id>`), the token a member token of a page ADMINISTRATOR with
    `r_organization_social` and `rw_organization_admin`."""

    platform = PLATFORM
    content_metrics_are_lifetime = False  # per-day statistics can be asked for any past day

    def __init__(
        self,
        settings: LinkedInSettings,
        account: Account,
        *,
        session: ApiSession | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        """A client for the organization of `account` (its URN is checked on the first call,
        which then fails with PERMANENT_CONFIG). `session` defaults to
        `create_session(settings, sleep=sleep, clock=clock)`; `clock` decides the 12-month window
        and the daily-quota reset (tests pin it)."""
        super().__init__(account)
        self.settings = settings
        self._clock = clock
        self._session = session or create_session(settings, sleep=sleep, clock=clock)
        self._headers = {
            "LinkedIn-Version": settings.api_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }

    # ---- plumbing

    def _get(self, path: str, query: str) -> Mapping[str, Any]:
        url = f"{self.settings.api_root}/{path}" + (f"?{query}" if query else "")
        response = self.authorized_request("GET", url, headers=self._headers)
        body = json_or_none(response)
        if not isinstance(body, dict):
            raise _invalid(f"expected a JSON object from {safe_url(url)}: {excerpt(response.text)}")
        return body

    def token_exchange(self) -> TokenExchange:
        """OAuth 2.0 refresh at `POST {oauth_base_url}/oauth/v2/accessToken` (client id and
        secret in the form body)."""
        return token_exchange(token_endpoint(self.settings), self.settings.retry, clock=self._clock)

    def _org_urn(self) -> str:
        account = self.account
        urn = account.external_account_id
        if not _ORG_URN_RE.fullmatch(urn):
            raise PlatformError(
                CONFIG_ERROR,
                redact(
                    f"integration {account.integration_id!r}: external_account_id {urn!r} is not "
                    "a LinkedIn organization URN such as 'urn:li:organization:2000001'"
                ),
                platform=PLATFORM,
                code="bad_account_id",
            )
        return urn

    def _in_statistics_window(self, day: dt.date, what: str) -> bool:
        return bool(self._statistics_window([day], what))

    def describe_account(self) -> AccountDescription:
        """`GET /rest/organizations/{id}` (Retrieve an Administered Organization): LinkedIn
        answers it only to a member with an administrator role on the page, the role the
        statistics need; a missing role is 403 ACCESS_DENIED (PERMANENT_CREDENTIAL)."""
        urn = self._org_urn()
        org_id = urn.rsplit(":", 1)[1]
        body = self._get(f"organizations/{quote(org_id, safe='')}", "")
        name = body.get("localizedName")
        if not isinstance(name, str) or not name:
            raise _invalid(f"organization {urn} answered without a localizedName")
        vanity = body.get("vanityName")
        return AccountDescription(urn, name, vanity if isinstance(vanity, str) else None)

    # ---- listing

    def list_content_between(self, start: dt.date, end: dt.date) -> Iterator[ContentItem]:
        """Posts published on the UTC days `start`..`end`: ONE walk of the newest-created-first
        listing (it has no time filter), back until posts were created `created_slack_days`
        before `start` (or the listing ends)."""
        days_between(start, end)  # validates the range
        org = self._org_urn()
        since = day_start(start)
        until = day_start(end + dt.timedelta(days=1))
        floor = since - dt.timedelta(days=self.settings.created_slack_days)
        count = self.settings.page_size
        offset = 0
        seen: set[str] = set()
        span = str(start) if start == end else f"{start}..{end}"
        subject = f"posts of {org} on {span} need"
        for _ in capped_pages(PLATFORM, self.settings.max_pages, subject):
            query = _query(
                [
                    ("author", org),
                    ("q", "author"),
                    ("count", count),
                    ("start", offset),
                    ("sortBy", "CREATED"),
                ]
            )
            body = self._get("posts", query)
            elements = _elements(body, "posts")
            reached_floor = False
            for raw in elements:
                if created_at(raw) < floor:
                    reached_floor = True
                    continue
                item = parse_post(raw)
                if item.external_content_id in seen or not _is_published(raw):
                    continue
                seen.add(item.external_content_id)
                if since <= item.published_at < until:
                    yield item
            offset += len(elements)
            if reached_floor or len(elements) < count or _total_reached(body, offset):
                return

    # ---- post metrics

    def fetch_content_metrics(
        self,
        content_ids: Sequence[str],
        day: dt.date,
        *,
        permalinks: Mapping[str, str | None] | None = None,
    ) -> MetricsBatch:
        """Per-day statistics of the given posts on `day` (DAILY values), ceil(n / chunk)
        calls. A day outside the 12-month window gives an empty batch without any call; a post
        LinkedIn returns nothing for (deleted, not this page's, not indexed yet) is skipped."""
        ids = list(dict.fromkeys(content_ids))
        if not ids:
            return MetricsBatch(metrics=())
        org = self._org_urn()
        if not self._in_statistics_window(day, "post statistics"):
            return MetricsBatch(metrics=())
        done = _StatsResult()
        supported: list[str] = []
        for urn in ids:
            if _POST_URN_RE.fullmatch(urn):
                supported.append(urn)
            else:
                done.skipped.append(
                    SkippedObject(urn, "unsupported_urn", "not a share or ugcPost URN")
                )
        size = self.settings.stats_chunk_size
        for offset in range(0, len(supported), size):
            self._fetch_chunk(org, supported[offset : offset + size], day, done)
        logger.debug(
            "linkedin statistics of %d posts on %s: %d rows, %d skipped",
            len(ids),
            day,
            len(done.metrics),
            len(done.skipped),
        )
        return MetricsBatch(
            metrics=tuple(done.metrics[i] for i in ids if i in done.metrics),
            skipped=tuple(done.skipped),
        )

    def _fetch_chunk(self, org: str, urns: Sequence[str], day: dt.date, done: _StatsResult) -> None:
        shares = [u for u in urns if u.startswith("urn:li:share:")]
        ugc_posts = [u for u in urns if u.startswith("urn:li:ugcPost:")]
        params: list[tuple[str, Any]] = [
            ("q", "organizationalEntity"),
            ("organizationalEntity", org),
        ]
        if shares:
            params.append(("shares", shares))
        if ugc_posts:
            params.append(("ugcPosts", ugc_posts))
        params.append(("timeIntervals", time_interval(day)))
        body = self._get("organizationalEntityShareStatistics", _query(params))
        wanted = set(urns)
        for element in _elements(body, "share statistics"):
            urn = element.get("share") or element.get("ugcPost")
            if urn not in wanted or not _starts_on(element, day):
                continue  # another day's bucket, or a post we did not ask for
            if urn in done.metrics:
                logger.warning("linkedin sent two statistics elements for %s on %s", urn, day)
                continue
            done.metrics[urn] = ContentMetrics(
                external_content_id=urn,
                value_kind=ValueKind.DAILY,
                **parse_share_statistics(
                    element.get("totalShareStatistics"), self.settings.post_metrics
                ),
            )
        for urn in urns:
            if urn not in done.metrics:
                done.skipped.append(
                    SkippedObject(
                        urn,
                        "no_statistics",
                        f"LinkedIn returned no statistics for {day}: the post is deleted, not "
                        "authored by this organization, or not indexed yet",
                    )
                )

    # ---- account metrics

    def fetch_account_metrics_between(
        self, start: dt.date, end: dt.date, *, snapshot_day: dt.date | None
    ) -> dict[dt.date, AccountMetrics]:
        """Per-day follower gains, page views and share totals of the organization on the
        days `start`..`end`, ONE request per statistics finder for the whole range (one
        `timeIntervals` at DAY granularity: an element per UTC day); days outside the rolling
        12 months are NULL without any call for them. Plus the current follower total on
        `snapshot_day` when it is in the range (one `networkSizes` call)."""
        days = days_between(start, end)
        org = self._org_urn()
        wanted = set(self.settings.account_metrics)
        values: dict[dt.date, dict[str, int | None]] = {day: {} for day in days}
        if snapshot_day is not None and start <= snapshot_day <= end:
            values[snapshot_day]["followers_total"] = self._followers_total(org)
        window = self._statistics_window(days, "account statistics") if wanted else []
        if window:
            interval = time_interval(window[0], window[-1])
            if "new_followers" in wanted:
                elements = self._day_elements(
                    "organizationalEntityFollowerStatistics", "organizationalEntity", org, interval
                )
                for day in window:
                    values[day]["new_followers"] = _follower_gain(elements.get(day, {}))
            if "profile_views" in wanted:
                elements = self._day_elements(
                    "organizationPageStatistics", "organization", org, interval
                )
                for day in window:
                    values[day]["profile_views"] = _page_views(elements.get(day, {}))
            if wanted & {"impressions", "reach"}:
                elements = self._day_elements(
                    "organizationalEntityShareStatistics", "organizationalEntity", org, interval
                )
                for day in window:
                    element = elements.get(day, {})
                    stats = parse_share_statistics(element.get("totalShareStatistics"))
                    if "impressions" in wanted:
                        values[day]["impressions"] = stats["impressions"]
                    if "reach" in wanted:
                        values[day]["reach"] = stats["reach"]
        return {
            day: AccountMetrics(
                followers_total=found.get("followers_total"),
                new_followers=found.get("new_followers"),
                profile_views=found.get("profile_views"),
                reach=found.get("reach"),
                impressions=found.get("impressions"),
            )
            for day, found in values.items()
        }

    def _statistics_window(self, days: Sequence[dt.date], what: str) -> list[dt.date]:
        """The `days` inside LinkedIn's statistics window (the rolling 12 months up to today),
        logging the others as skipped: LinkedIn refuses a start older than 12 months (400),
        and has nothing yet for a future day."""
        today = self._clock().astimezone(dt.UTC).date()
        earliest = earliest_statistics_day(today)
        inside = [day for day in days if earliest <= day <= today]
        outside = [day for day in days if not earliest <= day <= today]
        if outside:
            logger.info(
                "linkedin %s for %s skipped: outside LinkedIn's statistics window %s..%s "
                "(rolling 12 months, nothing in the future)",
                what,
                outside[0] if len(outside) == 1 else f"{len(outside)} days from {outside[0]}",
                earliest,
                today,
            )
        return inside

    def _followers_total(self, org: str) -> int | None:
        body = self._get(
            f"networkSizes/{quote(org, safe='')}", "edgeType=COMPANY_FOLLOWED_BY_MEMBER"
        )
        return as_int(body.get("firstDegreeSize"))

    def _day_elements(
        self, finder: str, entity_param: str, org: str, interval: Mapping[str, Any]
    ) -> dict[dt.date, Mapping[str, Any]]:
        """The elements of a statistics finder by the UTC day they start on (the first one of
        a day wins; a day LinkedIn sent nothing for is absent: every field NULL)."""
        query = _query([("q", entity_param), (entity_param, org), ("timeIntervals", interval)])
        by_day: dict[dt.date, Mapping[str, Any]] = {}
        for element in _elements(self._get(finder, query), finder):
            day = _start_day(element)
            if day is not None:
                by_day.setdefault(day, element)
        return by_day


def _total_reached(body: Mapping[str, Any], offset: int) -> bool:
    paging = body.get("paging")
    total = as_int(paging.get("total")) if isinstance(paging, dict) else None
    return total is not None and offset >= total
