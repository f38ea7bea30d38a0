"""Facebook Pages through the Graph API: the posts of a day and their lifetime insights.

Wire format (the sandbox serves exactly this):
- Posts: `GET {base}/{version}/{page_id}/posts?fields=...&since=&until=&limit=`, one page after
  another by following `paging.next` until it is absent (cursors alone mean nothing), with a
  page cap. `paging.next` carries `access_token=`: it is stripped, the token goes in a header.
- Metrics: Graph batch requests, `POST {base}/{version}/` with `batch=[{"method":"GET",
  "relative_url":"<post_id>?fields=shares,comments.summary(true).limit(0),insights.metric(..)"}]`
  and `include_headers=false`. The reply is HTTP 200 with one entry per item, in order: `{"code":
  200, "body": "<JSON string>"}`, an item error, or `null` (not processed: retried).
- Errors are classified by Graph `error.code` / `error_subcode` / `is_transient`, never by HTTP
  status alone (rate limits arrive as 400 or 403); see `classify_graph_error`.
- Usage headers (`X-App-Usage`, `X-Page-Usage`, `X-Business-Use-Case-Usage`) slow requests down
  before the limits hit; see `usage_pause`.

Post insights are lifetime totals (`value_kind=LIFETIME_SNAPSHOT`): what Graph says now, which
the assets record only as a snapshot for the day they run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests

from analytics_pipeline.platforms.base import (
    Account,
    ContentFormat,
    ContentItem,
    ContentMetrics,
    ErrorClass,
    MetricsBatch,
    PlatformClient,
    PlatformError,
    SkippedObject,
    ValueKind,
)
from analytics_pipeline.platforms.http import ApiSession, RetryConfig, safe_url
from analytics_pipeline.platforms.redact import RedactingFilter, redact, strip_access_token
from analytics_pipeline.platforms.text import extract_hashtags
from analytics_pipeline.settings import SettingsError, env_float, env_list, env_str, env_url

__all__ = [
    "METRIC_COLUMNS",
    "POST_FIELDS",
    "FacebookClient",
    "FacebookSettings",
    "InvalidMetricError",
    "classify_graph_error",
    "classify_response",
    "create_session",
    "detect_format",
    "parse_post",
    "parse_post_metrics",
    "usage_pause",
]

PLATFORM = "facebook"
logger = logging.getLogger("analytics_pipeline.platforms.facebook")
if not any(isinstance(f, RedactingFilter) for f in logger.filters):
    logger.addFilter(RedactingFilter())

GRAPH_BATCH_LIMIT = 50
POST_FIELDS = (
    "id,created_time,message,permalink_url,status_type,"
    "attachments{media_type,type,url,subattachments}"
)
# Fields of every metrics item besides insights: shares and the comment count (no comment data).
_ITEM_FIELDS = "shares,comments.summary(true).limit(0)"

# Insight metric name -> ContentMetrics column. When two metrics feed one column (old and new
# reach), the first one in the configured `post_metrics` order that returned a value wins.
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

# Error codes (https://developers.facebook.com/docs/graph-api/guides/error-handling).
_TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 368, 613})
_BUC_THROTTLE_CODES = range(80000, 80100)  # business-use-case throttles: 80001 Pages, ...
_TOKEN_CODE = 190
_PERMISSION_CODES = frozenset({10, *range(200, 300)})
_OBJECT_ERRORS = frozenset({(100, 33), (100, 2108006)})
_INVALID_METRIC = re.compile(r"valid insights? metric", re.IGNORECASE)

_USAGE_HEADERS = ("X-App-Usage", "X-Page-Usage")
_BUC_HEADER = "X-Business-Use-Case-Usage"
_USAGE_KEYS = ("call_count", "total_cputime", "total_time")
_EXCERPT_CHARS = 200


@dataclass(frozen=True)
class FacebookSettings:
    base_url: str = "https://graph.facebook.com"
    api_version: str = "v25.0"
    post_metrics: tuple[str, ...] = (
        "post_media_view",
        "post_total_media_view_unique",
        "post_reactions_by_type_total",
        "post_clicks",
    )
    page_size: int = 100
    batch_size: int = GRAPH_BATCH_LIMIT
    # Pagination cap per listing: exceeding it raises INVALID_RESPONSE, never loops forever.
    max_pages: int = 200
    # Above this usage percentage requests are spaced out (see `usage_pause`).
    usage_slowdown_pct: float = 80.0
    # Pause between requests when usage reaches 100 % (scaled down linearly from there).
    usage_max_pause_s: float = 60.0
    retry: RetryConfig = field(default_factory=RetryConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= GRAPH_BATCH_LIMIT:
            raise ValueError(f"batch_size must be 1..{GRAPH_BATCH_LIMIT}")
        if self.page_size < 1 or self.max_pages < 1:
            raise ValueError("page_size and max_pages must be >= 1")
        if not 0 <= self.usage_slowdown_pct < 100:
            raise ValueError("usage_slowdown_pct must be in [0, 100)")
        if not re.fullmatch(r"v\d+\.\d+", self.api_version):
            raise ValueError(f"api_version must look like v25.0, got {self.api_version!r}")

    @property
    def api_root(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.api_version}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FacebookSettings:
        """ANALYTICS_FACEBOOK_* variables over the current defaults."""
        d = cls()
        version = env_str(env, "ANALYTICS_FACEBOOK_API_VERSION", d.api_version)
        if not re.fullmatch(r"v\d+\.\d+", version):
            raise SettingsError(
                f"ANALYTICS_FACEBOOK_API_VERSION={version!r} is not a Graph API version "
                "such as 'v25.0'."
            )
        return cls(
            base_url=env_url(env, "ANALYTICS_FACEBOOK_BASE_URL", d.base_url),
            api_version=version,
            post_metrics=env_list(env, "ANALYTICS_FACEBOOK_POST_METRICS", d.post_metrics),
            usage_max_pause_s=env_float(
                env, "ANALYTICS_FACEBOOK_USAGE_MAX_PAUSE_S", d.usage_max_pause_s, 0, 3600
            ),
            retry=RetryConfig.from_env(env),
        )


class InvalidMetricError(PlatformError):
    """Graph's `(#100) ... must be a valid insights metric`: one invalid or deprecated metric
    fails the whole call. The client finds which one and drops it (see `rejected_metrics`)."""


# --------------------------------------------------------------------------- error handling


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    cut = flat[:_EXCERPT_CHARS] + ("..." if len(flat) > _EXCERPT_CHARS else "")
    return redact(cut)


def classify_graph_error(
    error: Mapping[str, Any],
    *,
    http_status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> PlatformError:
    """Classify a Graph `{"error": {...}}` object by code/subcode/is_transient, not HTTP status.

    | code                                   | class                  |
    |----------------------------------------|------------------------|
    | 190 (any subcode, e.g. 458-467)        | PERMANENT_CREDENTIAL   |
    | 10, 200-299 (permissions)              | PERMANENT_CREDENTIAL   |
    | 100 / 33, 100 / 2108006                | PERMANENT_OBJECT       |
    | 1, 2, 4, 17, 32, 341, 368, 613, 8000x  | TRANSIENT              |
    | is_transient: true, or HTTP 5xx        | TRANSIENT              |
    | 100 "must be a valid insights metric"  | InvalidMetricError     |
    | anything else (100 invalid parameter,  | INVALID_RESPONSE: a bug|
    |   803 unknown alias, ...)              |   on our side, no retry|

    Credential and object errors win over `is_transient`: retrying a revoked token only burns
    quota. A BUC `estimated_time_to_regain_access` in `headers` becomes `retry_after`.
    """
    code = _as_int(error.get("code"))
    subcode = _as_int(error.get("error_subcode"))
    raw_message = error.get("message")
    message = str(raw_message) if raw_message is not None else "(no message)"
    details = [f"type={error.get('type')}"] if error.get("type") else []
    if error.get("fbtrace_id"):
        details.append(f"fbtrace_id={error.get('fbtrace_id')}")
    text = redact(f"{message} [{', '.join(details)}]" if details else message)
    code_text = None if code is None else (f"{code}/{subcode}" if subcode else str(code))

    def make(error_class: ErrorClass, cls: type[PlatformError] = PlatformError) -> PlatformError:
        return cls(error_class, text, platform=PLATFORM, code=code_text, http_status=http_status)

    if code == _TOKEN_CODE or code in _PERMISSION_CODES:
        return make(ErrorClass.PERMANENT_CREDENTIAL)
    if (code, subcode) in _OBJECT_ERRORS:
        return make(ErrorClass.PERMANENT_OBJECT)
    is_transient = error.get("is_transient") is True
    server_side = http_status is not None and http_status >= 500
    if code in _TRANSIENT_CODES or code in _BUC_THROTTLE_CODES or is_transient or server_side:
        transient = make(ErrorClass.TRANSIENT)
        regain = _buc_regain_seconds(headers or {})
        if regain:
            transient.retry_after = regain
        return transient
    if code == 100 and _INVALID_METRIC.search(message):
        return make(ErrorClass.INVALID_RESPONSE, InvalidMetricError)
    return make(ErrorClass.INVALID_RESPONSE)


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # includes JSONDecodeError
        return None


def classify_response(response: requests.Response) -> PlatformError | None:
    """`ApiSession` classifier for top-level Graph replies: None when the reply is usable JSON.

    Graph error envelopes go through `classify_graph_error`; a non-JSON 5xx (an HTML error page
    from a proxy) or a 429 is TRANSIENT; any other non-2xx, or a 2xx that is not JSON, is
    INVALID_RESPONSE with a short redacted excerpt. The SHAPE of a JSON body is checked by the
    caller, which knows what it asked for.
    """
    status = response.status_code
    body = _json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return classify_graph_error(body["error"], http_status=status, headers=response.headers)
    if 200 <= status < 300 and body is not None:
        return None
    excerpt = _excerpt(response.text or "")
    if status >= 500 or status in (408, 429):
        error_class = ErrorClass.TRANSIENT
    else:
        error_class = ErrorClass.INVALID_RESPONSE
    what = "non-JSON reply" if body is None else "reply without a Graph error object"
    return PlatformError(
        error_class,
        f"HTTP {status} {what}: {excerpt}",
        platform=PLATFORM,
        code=f"http_{status}",
        http_status=status,
    )


def _invalid(message: str) -> PlatformError:
    return PlatformError(ErrorClass.INVALID_RESPONSE, redact(message), platform=PLATFORM)


# --------------------------------------------------------------------------- usage headers


def _usage_header(headers: Mapping[str, str], name: str) -> Any:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        logger.warning("ignoring malformed %s header: %s", name, _excerpt(str(raw)))
        return None


def _buc_entries(headers: Mapping[str, str]) -> Iterator[Mapping[str, Any]]:
    parsed = _usage_header(headers, _BUC_HEADER)
    if parsed is None:
        return
    if not isinstance(parsed, dict):
        logger.warning("ignoring %s header that is not an object", _BUC_HEADER)
        return
    for entries in parsed.values():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                yield entry


def _percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def _max_usage_pct(headers: Mapping[str, str]) -> float:
    usage = 0.0
    for name in _USAGE_HEADERS:
        parsed = _usage_header(headers, name)
        if isinstance(parsed, dict):
            usage = max([usage, *(_percent(parsed.get(key)) for key in _USAGE_KEYS)])
        elif parsed is not None:
            logger.warning("ignoring %s header that is not an object", name)
    for entry in _buc_entries(headers):
        usage = max([usage, *(_percent(entry.get(key)) for key in _USAGE_KEYS)])
    return usage


def _buc_regain_seconds(headers: Mapping[str, str]) -> float:
    """Longest BUC `estimated_time_to_regain_access` (minutes) in seconds; 0 when none."""
    minutes = max(
        (_percent(e.get("estimated_time_to_regain_access")) for e in _buc_entries(headers)),
        default=0.0,
    )
    return max(0.0, minutes) * 60.0


def usage_pause(headers: Mapping[str, str], settings: FacebookSettings) -> float:
    """Seconds to pause before the next request, from Meta's usage headers.

    u = the highest of call_count / total_cputime / total_time over X-App-Usage, X-Page-Usage
    and every X-Business-Use-Case-Usage entry (percentages). With s = usage_slowdown_pct:
        pause = 0                                              if u <= s
        pause = usage_max_pause_s * min(1, (u - s) / (100 - s))  otherwise
    so 80 % -> 0 s, 90 % -> 30 s, >= 100 % -> 60 s with the defaults. A BUC
    `estimated_time_to_regain_access` > 0 raises it to that many minutes; `ApiSession` refuses
    to sleep longer than `max_wait_s` and raises a transient error with `retry_after` instead.
    Malformed headers are logged and ignored.
    """
    usage = _max_usage_pct(headers)
    pause = 0.0
    if usage > settings.usage_slowdown_pct:
        span = 100.0 - settings.usage_slowdown_pct
        pause = settings.usage_max_pause_s * min(1.0, (usage - settings.usage_slowdown_pct) / span)
    return max(pause, _buc_regain_seconds(headers))


def create_session(
    settings: FacebookSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    http: requests.Session | None = None,
) -> ApiSession:
    """The `ApiSession` a FacebookClient uses (Graph classifier + usage throttle)."""
    return ApiSession(
        PLATFORM,
        classify_response,
        settings.retry,
        throttle=lambda response: usage_pause(response.headers, settings),
        sleep=sleep,
        session=http,
    )


# --------------------------------------------------------------------------- parsing


def parse_created_time(value: Any) -> dt.datetime:
    """Graph's `2026-11-20T14:03:11+0000` (also accepts other ISO 8601 forms) as aware UTC."""
    if not isinstance(value, str):
        raise _invalid(f"created_time is not a string: {value!r}")
    try:
        parsed = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(f"unparseable created_time {value!r}") from None
    if parsed.tzinfo is None:
        raise _invalid(f"created_time without a timezone: {value!r}")
    return parsed.astimezone(dt.UTC)


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


def parse_post(post: Any) -> ContentItem:
    """One element of `/{page_id}/posts` `data` as a ContentItem."""
    if not isinstance(post, dict) or not isinstance(post.get("id"), str) or not post["id"]:
        raise _invalid(f"post without an id: {_excerpt(json.dumps(post, default=str))}")
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


def _metric_value(entry: Mapping[str, Any]) -> Any:
    values = entry.get("values")
    if not isinstance(values, list) or not values or not isinstance(values[-1], dict):
        return None
    return values[-1].get("value")  # lifetime: one value


def _reaction_columns(value: Any) -> dict[str, int | None]:
    if not isinstance(value, dict):
        logger.debug("%s value is not a dict; left NULL", REACTIONS_BY_TYPE)
        return {}
    counts = {str(kind): _as_int(count) for kind, count in value.items()}
    if any(count is None for count in counts.values()):
        logger.debug("%s has non-integer counts; left NULL", REACTIONS_BY_TYPE)
        return {}
    # Graph lists only non-zero reaction types: a present dict without "like" means 0 likes.
    return {
        "reactions": sum(c for c in counts.values() if c is not None),
        "likes": counts.get("like", 0),
    }


def _insight_columns(body: Mapping[str, Any], metric_order: Sequence[str]) -> dict[str, int | None]:
    insights = body.get("insights")
    data = insights.get("data") if isinstance(insights, dict) else None
    by_name: dict[str, Any] = {}
    for entry in data if isinstance(data, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            by_name.setdefault(entry["name"], _metric_value(entry))
    columns: dict[str, int | None] = {}
    ordered = [*metric_order, *(name for name in by_name if name not in metric_order)]
    for name in ordered:
        if name not in by_name:
            continue
        value = by_name[name]
        if name == REACTIONS_BY_TYPE:
            for column, number in _reaction_columns(value).items():
                if columns.get(column) is None:
                    columns[column] = number
        elif name in METRIC_COLUMNS:
            column = METRIC_COLUMNS[name]
            if columns.get(column) is None:
                columns[column] = _as_int(value)
        else:
            logger.debug("ignoring unknown insights metric %r", name)
    return columns


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
        shares=_as_int(shares.get("count")) if isinstance(shares, dict) else None,
        comments=_as_int(summary.get("total_count")) if isinstance(summary, dict) else None,
        **columns,
    )


# --------------------------------------------------------------------------- the client

# What a batch item turned into: metrics, a classified error, or None (Graph sent `null`).
_ItemResult = ContentMetrics | PlatformError | None


@dataclass
class _ChunkResult:
    metrics: dict[str, ContentMetrics] = field(default_factory=dict)
    skipped: list[SkippedObject] = field(default_factory=list)


class FacebookClient(PlatformClient):
    """Facebook Pages: `external_account_id` is the Page id, the token a Page access token."""

    platform = PLATFORM
    content_metrics_are_lifetime = True

    def __init__(
        self,
        settings: FacebookSettings,
        *,
        session: ApiSession | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`session` defaults to `create_session(settings, sleep=sleep)`; `sleep` is only used
        for that default session (tests inject a recorder)."""
        self.settings = settings
        self._session = session or create_session(settings, sleep=sleep)
        self._rejected: list[str] = []  # invalid metrics, dropped for the client's lifetime
        root = urlsplit(settings.base_url)
        self._origin = (root.scheme.lower(), root.netloc.lower())

    @property
    def api_calls(self) -> int:
        return self._session.calls

    @property
    def session(self) -> ApiSession:
        return self._session

    @property
    def rejected_metrics(self) -> tuple[str, ...]:
        return tuple(self._rejected)

    def close(self) -> None:
        self._session.close()

    # ---- listing

    def list_content(self, account: Account, day: dt.date) -> Iterator[ContentItem]:
        start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        end = start + dt.timedelta(days=1)
        url: str | None = (
            f"{self.settings.api_root}/{quote(account.external_account_id, safe='')}/posts"
        )
        params: dict[str, str | int] | None = {
            "fields": POST_FIELDS,
            "since": int(start.timestamp()),
            "until": int(end.timestamp()),
            "limit": self.settings.page_size,
        }
        seen: set[str] = set()
        pages = 0
        while url is not None:
            pages += 1
            if pages > self.settings.max_pages:
                raise _invalid(
                    f"posts of page {account.external_account_id} on {day} need more than "
                    f"max_pages={self.settings.max_pages} pages; refusing to page on"
                )
            body = self._get_object(url, account, params)
            for post in self._page_posts(body):
                if post.external_content_id in seen:
                    continue
                seen.add(post.external_content_id)
                if start <= post.published_at < end:
                    yield post
                else:
                    logger.debug(
                        "dropping post %s published outside %s", post.external_content_id, day
                    )
            url, params = self._next_url(body), None

    def _get_object(
        self, url: str, account: Account, params: Mapping[str, Any] | None
    ) -> Mapping[str, Any]:
        response = self._session.request("GET", url, token=account.token, params=params)
        body = _json_or_none(response)
        if not isinstance(body, dict):
            raise _invalid(
                f"expected a JSON object from {safe_url(url)}: {_excerpt(response.text)}"
            )
        return body

    @staticmethod
    def _page_posts(body: Mapping[str, Any]) -> Iterator[ContentItem]:
        data = body.get("data")
        if not isinstance(data, list):
            raise _invalid(f"posts reply without a data list: {_excerpt(json.dumps(body))}")
        for post in data:
            yield parse_post(post)

    def _next_url(self, body: Mapping[str, Any]) -> str | None:
        """The next page to fetch: `paging.next` without its token, or None when it is absent.

        The token is only ever sent to the configured Graph host: a `next` pointing elsewhere is
        an invalid response, not a URL to follow.
        """
        paging = body.get("paging")
        next_url = paging.get("next") if isinstance(paging, dict) else None
        if not next_url:
            return None
        if not isinstance(next_url, str):
            raise _invalid("paging.next is not a string")
        absolute = urljoin(self.settings.base_url, strip_access_token(next_url))
        target = urlsplit(absolute)
        if (target.scheme.lower(), target.netloc.lower()) != self._origin:
            raise _invalid(
                f"paging.next points to {target.scheme}://{target.hostname}, not to the "
                "configured base_url; not sending the token there"
            )
        return absolute

    # ---- metrics

    def fetch_content_metrics(
        self, account: Account, content_ids: Sequence[str], day: dt.date
    ) -> MetricsBatch:
        """Lifetime metrics as of now (Graph cannot answer for a past `day`), batched:
        ceil(n / batch_size) HTTP calls in the normal path."""
        ids = list(dict.fromkeys(content_ids))
        done = _ChunkResult()
        size = self.settings.batch_size
        for offset in range(0, len(ids), size):
            chunk = self._fetch_chunk(account, ids[offset : offset + size])
            done.metrics.update(chunk.metrics)
            done.skipped.extend(chunk.skipped)
        logger.debug(
            "facebook metrics for %d posts (%s): %d ok, %d skipped",
            len(ids),
            day,
            len(done.metrics),
            len(done.skipped),
        )
        return MetricsBatch(
            metrics=tuple(done.metrics[i] for i in ids if i in done.metrics),
            skipped=tuple(done.skipped),
            rejected_metrics=self.rejected_metrics,
        )

    def _active_metrics(self) -> list[str]:
        return [m for m in self.settings.post_metrics if m not in self._rejected]

    def _fetch_chunk(self, account: Account, ids: Sequence[str]) -> _ChunkResult:
        """One batch call for `ids`, then only the items that need it again: `null` and
        transient items (at most `retry.max_attempts` rounds, with backoff), and every item
        once more after an invalid metric was identified and dropped."""
        result = _ChunkResult()
        pending = list(ids)
        item_retries = 0
        while pending:
            metrics = self._active_metrics()
            outcomes = self._send_batch(account, pending, metrics)
            retry: list[str] = []
            metric_failed: list[str] = []
            last_transient: PlatformError | None = None
            invalid_metric: InvalidMetricError | None = None
            for post_id, outcome in zip(pending, outcomes, strict=True):
                if isinstance(outcome, ContentMetrics):
                    result.metrics[post_id] = outcome
                elif isinstance(outcome, InvalidMetricError):
                    invalid_metric = outcome
                    metric_failed.append(post_id)
                elif outcome is None or outcome.error_class is ErrorClass.TRANSIENT:
                    retry.append(post_id)
                    last_transient = outcome or _not_processed(post_id)
                elif outcome.error_class is ErrorClass.PERMANENT_OBJECT:
                    result.skipped.append(
                        SkippedObject(post_id, outcome.code or "unknown", outcome.message)
                    )
                else:
                    raise outcome  # credential errors stop the integration at once
            if invalid_metric is not None:
                self._reject_invalid_metrics(account, invalid_metric, metric_failed, metrics)
                pending = metric_failed + retry
                continue
            if retry and last_transient is not None:
                if item_retries + 1 >= self.settings.retry.max_attempts:
                    raise last_transient
                self._session.wait_before_retry(item_retries, last_transient)
                item_retries += 1
            pending = retry
        return result

    def _send_batch(
        self, account: Account, post_ids: Sequence[str], metrics: Sequence[str]
    ) -> list[_ItemResult]:
        """POST one Graph batch; per item: metrics, a classified error, or None (`null`).

        A top-level invalid-metric error (a non-batch-aware server) counts for every item."""
        items = [
            {"method": "GET", "relative_url": _metrics_relative_url(post_id, metrics)}
            for post_id in post_ids
        ]
        try:
            entries = self._post_batch(account, items)
        except InvalidMetricError as error:
            return [error] * len(post_ids)
        return [
            _parse_batch_entry(post_id, entry, metrics)
            for post_id, entry in zip(post_ids, entries, strict=True)
        ]

    def _post_batch(self, account: Account, items: Sequence[Mapping[str, str]]) -> list[Any]:
        response = self._session.request(
            "POST",
            f"{self.settings.api_root}/",
            token=account.token,
            data={"batch": json.dumps(items, separators=(",", ":")), "include_headers": "false"},
        )
        entries = _json_or_none(response)
        if not isinstance(entries, list) or len(entries) != len(items):
            raise _invalid(
                f"batch reply is not a list of {len(items)} entries: {_excerpt(response.text)}"
            )
        return entries

    def _reject_invalid_metrics(
        self,
        account: Account,
        error: InvalidMetricError,
        candidates: Sequence[str],
        metrics: Sequence[str],
    ) -> None:
        """Find which of `metrics` Graph rejects and drop them for this client's lifetime.

        Graph's message ("(#100) The value must be a valid insights metric") does not reliably
        name the culprit, so one post is re-asked once per metric, all in ONE batch call. A
        post that turns out to be gone is replaced by the next candidate (at most 3). If no
        metric can be blamed, the original error is raised rather than looping.
        """
        if not metrics:
            raise error
        last_transient: PlatformError | None = None
        for post_id in candidates[:3]:
            items = [
                {
                    "method": "GET",
                    "relative_url": f"{_quote_id(post_id)}?fields=insights.metric({m})",
                }
                for m in metrics
            ]
            entries = self._post_batch(account, items)
            outcomes = [_parse_batch_entry(post_id, e, metrics) for e in entries]
            invalid = [
                m
                for m, o in zip(metrics, outcomes, strict=True)
                if isinstance(o, InvalidMetricError)
            ]
            if invalid:
                self._rejected.extend(m for m in invalid if m not in self._rejected)
                logger.warning(
                    "facebook rejected insights metrics %s as invalid or deprecated; "
                    "dropped for this client's lifetime, the other metrics are still fetched",
                    ", ".join(invalid),
                )
                return
            for outcome in outcomes:
                if isinstance(outcome, PlatformError):
                    if outcome.error_class is ErrorClass.PERMANENT_CREDENTIAL:
                        raise outcome
                    if outcome.error_class is ErrorClass.TRANSIENT:
                        last_transient = outcome
                elif outcome is None:
                    last_transient = _not_processed(post_id)
            if all(isinstance(o, ContentMetrics) for o in outcomes):
                break  # every metric works on its own: nothing to blame
        raise last_transient or error


def _not_processed(post_id: str) -> PlatformError:
    return PlatformError(
        ErrorClass.TRANSIENT,
        f"batch item for {post_id} was not processed (null)",
        platform=PLATFORM,
        code="batch_null",
    )


def _quote_id(post_id: str) -> str:
    return quote(post_id, safe="_")


def _metrics_relative_url(post_id: str, metrics: Sequence[str]) -> str:
    fields = _ITEM_FIELDS
    if metrics:
        fields += f",insights.metric({','.join(metrics)})"
    return f"{_quote_id(post_id)}?fields={fields}"


def _parse_batch_entry(post_id: str, entry: Any, metrics: Sequence[str]) -> _ItemResult:
    if entry is None:
        return None
    if not isinstance(entry, dict):
        raise _invalid(f"batch entry for {post_id} is not an object")
    status = _as_int(entry.get("code"))
    raw_body = entry.get("body")
    try:
        body = json.loads(raw_body) if isinstance(raw_body, str) else raw_body
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return classify_graph_error(body["error"], http_status=status)
    if status == 200 and isinstance(body, dict):
        return parse_post_metrics(post_id, body, metrics)
    error_class = (
        ErrorClass.TRANSIENT
        if status is not None and status >= 500
        else ErrorClass.INVALID_RESPONSE
    )
    return PlatformError(
        error_class,
        redact(f"batch item for {post_id}: HTTP {status}: {_excerpt(str(raw_body))}"),
        platform=PLATFORM,
        code=f"http_{status}",
        http_status=status,
    )
