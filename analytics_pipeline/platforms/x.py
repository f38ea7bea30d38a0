"""X (Twitter) API v2: a user's posts of a day, their lifetime metrics and the follower total.

Wire format (the sandbox serves exactly this; base `https://api.x.com`, version path `/2`;
checked against X's own OpenAPI documents by `analytics_pipeline_tests/test_x_spec.py`):
- Posts: `GET {base}/{version}/users/{id}/tweets?start_time=&end_time=&max_results=100&
  exclude=retweets&tweet.fields=attachments,author_id,created_at,entities,note_tweet,
  referenced_tweets&expansions=attachments.media_keys,author_id&media.fields=type&
  user.fields=username`, page after page with `pagination_token` = `meta.next_token` until
  `meta.next_token` is absent, with a page cap. `end_time` is inclusive on X, so posts are
  also filtered to [day 00:00, next day 00:00) here. A range of days is ONE walk (start_time =
  the first day's midnight, end_time = the midnight after the last). X serves only the 3,200
  most recent posts of a timeline (retweets included), so days older than that list as empty
  whichever way they are asked. Only metadata fields are asked for:
  metrics come from the lookup below, and asking a listing for private metrics would make X
  leave posts out of it.
- Metrics: `GET {base}/{version}/tweets?ids=<up to 100>&tweet.fields=attachments,
  public_metrics[,non_public_metrics,organic_metrics]&expansions=attachments.media_keys&
  media.fields=type,public_metrics`: ceil(n / 100) calls, plus at most one more per kind
  (see "Private metrics"). HTTP 200 may carry `errors` next to `data`: what came back is kept.
- Followers: `GET {base}/{version}/users/{id}?user.fields=public_metrics`.

Tweet or Post spelling (`XSettings.field_spelling`): X's OpenAPI 2.167 renames Tweet to Post.
The default, "tweet", sends the names above (X's public docs and OpenAPI 2.159). "post" sends
the 2.167 names instead: `post.fields=` (timeline `attachments,created_at,entities,note_post`:
2.167 has no `author_id` / `referenced_tweets` field, so `author_id` and the references come
with the expansions `attachments.media_keys,author_id,referenced_posts`; lookup `attachments,
public_metrics[,...]`). Replies are read in BOTH spellings whatever the setting, so a rename
can never turn a count into NULL: `public_metrics.retweet_count` / `repost_count`,
`note_tweet` / `note_post`, `referenced_tweets` / `referenced_posts`, problem types under
`https://api.twitter.com/2/problems/` or `https://api.x.com/2/problems/` (only the last path
segment counts), and `not-authorized-for-field` / `field-unauthorized` for a refused field.

Reference posts: retweets are not the account's own content and are skipped (`exclude=
retweets` plus a client-side check). Quotes and replies are kept, with `ContentItem.
reference_type` "quote" / "reply" (from `referenced_tweets[].type` (or `referenced_posts[]`)
quoted / replied_to; a reply that quotes counts as a reply); `XPost` also keeps the referenced
post id.

Formats (`detect_format`): 2+ media -> CAROUSEL (also mixed photo/video); one video or
animated_gif -> VIDEO; one photo -> POST; no media but a link to somewhere other than an X
post (`entities.urls` without `media_key`) -> LINK; otherwise TEXT (polls included). Long
posts carry their full text and entities in `note_tweet` (`note_post`), which wins over the
cut `text`.
Hashtags come from `entities.hashtags[].tag`, normalized like `text.extract_hashtags`.

Metrics mapping (`parse_tweet_metrics`; lifetime totals, `LIFETIME_SNAPSHOT`):

| column      | X field                                                  | note               |
|-------------|----------------------------------------------------------|--------------------|
| impressions | public_metrics.impression_count (else non_public/organic)|                    |
| views       | the same impression_count                                | X labels it "Views"|
| likes       | public_metrics.like_count                                |                    |
| reactions   | public_metrics.like_count                                | likes are X's only |
|             |                                                          | reaction           |
| comments    | public_metrics.reply_count                               |                    |
| shares      | public_metrics.retweet_count (or repost_count)           | NULL unless both   |
|             | + quote_count                                            |                    |
| saves       | public_metrics.bookmark_count                            |                    |
| clicks      | non_public_metrics (else organic_metrics) url_link_clicks| X omits link clicks|
|             | + user_profile_clicks, summing those present             | on posts without a |
|             |                                                          | link; NULL if none |
| video_views | sum of includes.media[].public_metrics.view_count of the | per media across   |
|             | post's videos / GIFs                                     | every post using it|
| reach       | NULL: X v2 has no unique reach                           |                    |

Private metrics: `non_public_metrics` / `organic_metrics` need a user-context token and only
exist for posts younger than 30 days. They are asked for only for ids whose snowflake time is
younger than 30 days (minus a 1 h margin), in separate calls from older ids. When X refuses
them (a 200 with `not-authorized-for-field` / `field-unauthorized` errors and the post left out
of `data`, or a 403 `unsupported-authentication`), the refused ids are fetched again with
public metrics only (clicks stay NULL, never 0); if a whole call was refused the integration is
remembered as app-only for this client's lifetime and never asked again.

Account metrics: X v2 has no per-day account metrics: only `followers_total` (the current
`public_metrics.followers_count`, on the snapshot day); every other field stays NULL and no
call is made without a snapshot day in the range.

Errors (`classify_response`, by problem `type` / v1.1 `code`, not HTTP status alone):

| reply                                            | class                        |
|--------------------------------------------------|------------------------------|
| 401                                              | PERMANENT_CREDENTIAL         |
| 403 client-forbidden / unsupported-authentication| PERMANENT_CREDENTIAL         |
| / not-authorized / anything else                 |                              |
| 403 code 453; 404 (but resource-not-found); 410 | PERMANENT_CONFIG (version or |
|                                                  | base URL; names the setting) |
| 429 usage-capped (`UsageCapExceeded`)            | TRANSIENT, retry_after until |
|                                                  | the cap period resets        |
| 429 otherwise                                    | TRANSIENT, retry_after =     |
|                                                  | x-rate-limit-reset - now     |
| 5xx, 408                                         | TRANSIENT                    |
| 404 resource-not-found                           | PERMANENT_OBJECT             |
| 400 invalid-request naming `tweet.fields` or     | PERMANENT_CONFIG (names      |
| `post.fields` (the spelling is not served)       | ANALYTICS_X_FIELD_SPELLING)  |
| 400 invalid-request, other 4xx, non-JSON 2xx     | INVALID_RESPONSE             |
| 200 errors resource-not-found / not-authorized-  | SkippedObject (that post)    |
| for-resource / resource-unavailable on a post    |                              |
| 200 errors-only on the account (user not found,  | PERMANENT_CREDENTIAL         |
| suspended, protected)                            |                              |

`x-rate-limit-remaining: 0` pauses the next request until `x-rate-limit-reset` (+1 s for
clock skew); `ApiSession` raises a TRANSIENT error instead of sleeping longer than
`max_wait_s`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import quote

import requests

from analytics_pipeline.platforms import common
from analytics_pipeline.platforms.base import (
    Account,
    AccountDescription,
    PlatformError,
    TokenExchange,
    days_between,
)
from analytics_pipeline.platforms.common import (
    SessionClient,
    capped_pages,
    day_start,
    excerpt,
    invalid_response,
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
    "COMMON_REFERENCE_TYPES",
    "DEFAULT_FIELD_SPELLING",
    "FIELD_SPELLINGS",
    "LOOKUP_LIMIT",
    "PRIVATE_METRIC_GROUPS",
    "FieldSpelling",
    "ReferenceType",
    "XClient",
    "XPartialError",
    "XPost",
    "XSettings",
    "classify_response",
    "create_session",
    "detect_format",
    "parse_partial_errors",
    "parse_tweet",
    "parse_tweet_metrics",
    "rate_limit_pause",
    "snowflake_time",
    "usage_cap_reset",
]

PLATFORM = "x"
logger = redacting_logger("analytics_pipeline.platforms.x")

LOOKUP_LIMIT = 100  # ids per GET /2/tweets
PRIVATE_METRIC_GROUPS = frozenset({"non_public_metrics", "organic_metrics"})
PRIVATE_METRICS_WINDOW = dt.timedelta(days=30)
# Ask for private metrics only comfortably inside X's window (our clock against X's).
PRIVATE_METRICS_MARGIN = dt.timedelta(hours=1)
RESET_SLACK_S = 1.0  # added to x-rate-limit-reset waits: our clock against X's
X_EPOCH_MS = 1288834974657

# The user timeline's `start_time` must be on or after 2010-11-06T00:00:00Z (X's reference).
TIMELINE_EARLIEST = dt.datetime(2010, 11, 6, tzinfo=dt.UTC)
TIMELINE_TWEET_FIELDS = "attachments,author_id,created_at,entities,note_tweet,referenced_tweets"
TIMELINE_EXPANSIONS = "attachments.media_keys,author_id"
TIMELINE_MEDIA_FIELDS = "type"
TIMELINE_USER_FIELDS = "username"
METRICS_EXPANSIONS = "attachments.media_keys"
METRICS_MEDIA_FIELDS = "type,public_metrics"


@dataclass(frozen=True)
class FieldSpelling:
    """The request names of one spelling of X API v2 (see "Tweet or Post spelling")."""

    fields_param: str  # the `*.fields` parameter of post objects
    timeline_fields: str
    timeline_expansions: str


# "tweet": X's public docs and OpenAPI 2.159; "post": OpenAPI 2.167 (Tweet renamed Post). In
# "post", author_id and the references are not post fields: their expansions bring them along.
FIELD_SPELLINGS: Mapping[str, FieldSpelling] = {
    "tweet": FieldSpelling("tweet.fields", TIMELINE_TWEET_FIELDS, TIMELINE_EXPANSIONS),
    "post": FieldSpelling(
        "post.fields",
        "attachments,created_at,entities,note_post",
        "attachments.media_keys,author_id,referenced_posts",
    ),
}
DEFAULT_FIELD_SPELLING = "tweet"

# Problem types (last path segment of `type`) that concern one post in a 200 reply.
_OBJECT_PROBLEMS = frozenset(
    {"resource-not-found", "not-authorized-for-resource", "resource-unavailable"}
)
_FIELD_REFUSED = "not-authorized-for-field"
# 2.167 also names `field-unauthorized` (FieldUnauthorizedProblem): the same refusal.
_FIELD_REFUSED_NAMES = frozenset({_FIELD_REFUSED, "field-unauthorized"})
_UNSUPPORTED_AUTH = "unsupported-authentication"
_USAGE_CAPPED = "usage-capped"
_RETIRED_VERSION_CODES = frozenset({453})  # v1.1 "you only have access to a subset of v2"
# Media key prefixes X uses: 3 photo, 7 video, 13 amplify video, 16 animated GIF.
_MEDIA_KEY_TYPES = {"3": "photo", "7": "video", "13": "video", "16": "animated_gif"}
_VIDEO_TYPES = frozenset({"video", "animated_gif"})
_STATUS_URL = re.compile(r"(?i)^https?://(?:www\.|mobile\.)?(?:x|twitter)\.com/[^/?#]+/status/\d+")
_VERSION_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_EXCERPT_CHARS = 300


@dataclass(frozen=True)
class XSettings:
    base_url: str = "https://api.x.com"
    api_version: str = "2"
    # Tweet field groups that need a user-context token; empty or ("none",): public metrics
    # only (an app-only token).
    private_metrics: tuple[str, ...] = ("non_public_metrics", "organic_metrics")
    page_size: int = 100  # max_results of the timeline, 5..100
    lookup_batch_size: int = LOOKUP_LIMIT
    # Pagination cap per listing (X serves at most 3200 timeline posts = 32 full pages):
    # exceeding it raises INVALID_RESPONSE, never loops forever.
    max_pages: int = 40
    # Request names: "tweet" (`tweet.fields`, X's docs, OpenAPI 2.159) or "post" (`post.fields`,
    # OpenAPI 2.167). Replies are read in both spellings either way.
    field_spelling: str = DEFAULT_FIELD_SPELLING
    retry: RetryConfig = field(default_factory=RetryConfig)

    def __post_init__(self) -> None:
        if [group.lower() for group in self.private_metrics] == ["none"]:
            object.__setattr__(self, "private_metrics", ())
        if self.field_spelling not in FIELD_SPELLINGS:
            raise ValueError(
                f"field_spelling must be one of {', '.join(FIELD_SPELLINGS)} "
                f"(tweet.fields or post.fields), got {self.field_spelling!r}"
            )
        if not 5 <= self.page_size <= 100:
            raise ValueError("page_size must be 5..100 (X's max_results)")
        if not 1 <= self.lookup_batch_size <= LOOKUP_LIMIT:
            raise ValueError(f"lookup_batch_size must be 1..{LOOKUP_LIMIT}")
        if self.max_pages < 1:
            raise ValueError("max_pages must be >= 1")
        if not _VERSION_RE.fullmatch(self.api_version):
            raise ValueError(f"api_version must look like '2', got {self.api_version!r}")
        unknown = set(self.private_metrics) - PRIVATE_METRIC_GROUPS
        if unknown:
            raise ValueError(
                f"unknown private metric groups {sorted(unknown)}; allowed: "
                f"{', '.join(sorted(PRIVATE_METRIC_GROUPS))}, or 'none'"
            )

    @property
    def api_root(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.api_version}"

    @property
    def spelling(self) -> FieldSpelling:
        return FIELD_SPELLINGS[self.field_spelling]


# --------------------------------------------------------------------------- records


class ReferenceType(StrEnum):
    """How a post relates to another one (`referenced_tweets[].type`, `referenced_posts[]`)."""

    QUOTED = "quoted"
    REPLIED_TO = "replied_to"
    RETWEETED = "retweeted"


# When a post references several (a reply that quotes), the first of these wins.
_REFERENCE_PRIORITY = (ReferenceType.RETWEETED, ReferenceType.REPLIED_TO, ReferenceType.QUOTED)
# X's reference types in the platform-neutral vocabulary of `ContentItem.reference_type`.
COMMON_REFERENCE_TYPES: Mapping[ReferenceType, str] = {
    ReferenceType.QUOTED: "quote",
    ReferenceType.REPLIED_TO: "reply",
    ReferenceType.RETWEETED: "reshare",
}


@dataclass(frozen=True)
class XPost:
    """A parsed post: the common ContentItem plus X's own view of what it references."""

    item: ContentItem
    reference_type: ReferenceType | None = None  # None: an original post
    referenced_id: str | None = None
    author_id: str | None = None

    @property
    def is_retweet(self) -> bool:
        return self.reference_type is ReferenceType.RETWEETED


@dataclass(frozen=True)
class XPartialError:
    """One entry of the `errors` list of an HTTP 200 reply."""

    problem: str  # last segment of `type`, e.g. "resource-not-found"
    resource_id: str | None
    resource_type: str | None
    field: str | None
    section: str | None
    message: str  # title and detail, redacted


# --------------------------------------------------------------------------- helpers


def _as_int(value: Any) -> int | None:
    """A JSON count; X sends header values and some ids as digit strings, which count too."""
    return common.as_int(value, text="unsigned")


def _excerpt(text: str) -> str:
    return excerpt(text, _EXCERPT_CHARS)


def _invalid(message: str) -> PlatformError:
    return invalid_response(PLATFORM, message)


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _problem_name(type_uri: Any) -> str | None:
    """`https://api.x.com/2/problems/usage-capped` -> `usage-capped` (any host)."""
    if not isinstance(type_uri, str) or not type_uri:
        return None
    return type_uri.rstrip("/").rsplit("/", 1)[-1]


def snowflake_time(tweet_id: str) -> dt.datetime | None:
    """When a post was created, from its snowflake id; None for a non-numeric id. Ids from
    before snowflakes (2010) decode to November 2010, which is just as old for our use."""
    if not tweet_id.isdigit() or len(tweet_id) > 19:
        return None
    ms = (int(tweet_id) >> 22) + X_EPOCH_MS
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


# --------------------------------------------------------------------------- error handling


def _reply_text(body: Any, response: requests.Response) -> tuple[str | None, list[int], str]:
    """(problem name, v1.1 error codes, redacted message) of an error reply."""
    if not isinstance(body, dict):
        return None, [], f"non-JSON reply: {_excerpt(response.text or '')}"
    name = _problem_name(body.get("type"))
    parts = [str(body[key]) for key in ("title", "detail") if body.get(key)]
    codes: list[int] = []
    for entry in body.get("errors") or ():
        if isinstance(entry, dict):
            code = _as_int(entry.get("code"))
            if code is not None:
                codes.append(code)
            message = entry.get("message") or entry.get("detail")
            if message:
                parts.append(f"{message}" + (f" (code {code})" if code is not None else ""))
    if name and name != "about:blank":
        parts.append(f"[{name}]")
    text = ": ".join(parts[:2]) + (" " + " ".join(parts[2:]) if len(parts) > 2 else "")
    return name, codes, _excerpt(text or json.dumps(body))


def _names_spelling(body: Any) -> bool:
    """True when an invalid-request problem is about a `*.fields` parameter of post objects (a
    spelling the API does not take), not about one of its values."""
    spelled = {spelling.fields_param for spelling in FIELD_SPELLINGS.values()}
    for entry in _dict(body).get("errors") or ():
        parameters = _dict(entry).get("parameters") if isinstance(entry, dict) else None
        message = str(_dict(entry).get("message") or "") if isinstance(entry, dict) else ""
        if spelled.intersection(_dict(parameters)) and "query parameter [" in message:
            return True
    return _dict(body).get("parameter") in spelled and "query parameter [" in str(
        _dict(body).get("detail") or ""
    )


def usage_cap_reset(period: Any, now: dt.datetime) -> float:
    """Seconds until a usage cap resets: next UTC midnight for a `Daily` cap, the first of next
    month for `Monthly` (X resets on the project's billing day, which the reply does not say:
    an estimate, only used to stop this stream for now instead of sleeping)."""
    today = now.astimezone(dt.UTC).date()
    if isinstance(period, str) and period.lower() == "monthly":
        first = today.replace(day=1)
        target = (first + dt.timedelta(days=32)).replace(day=1)
    else:
        target = today + dt.timedelta(days=1)
    reset = day_start(target)
    return max(0.0, (reset - now).total_seconds())


def _reset_wait(headers: Mapping[str, str], now: float) -> float | None:
    raw = headers.get("x-rate-limit-reset")
    reset = _as_int(raw)
    if reset is None:
        if raw is not None:
            logger.warning("ignoring malformed x-rate-limit-reset header: %s", _excerpt(str(raw)))
        return None
    return max(0.0, reset - now) + RESET_SLACK_S


def rate_limit_pause(headers: Mapping[str, str], now: float) -> float:
    """Pause before the next request: until `x-rate-limit-reset` when
    `x-rate-limit-remaining` is 0, else none. Malformed headers are logged and ignored."""
    remaining = headers.get("x-rate-limit-remaining")
    if remaining is None:
        return 0.0
    if _as_int(remaining) != 0:
        if _as_int(remaining) is None:
            logger.warning("ignoring malformed x-rate-limit-remaining: %s", _excerpt(remaining))
        return 0.0
    return _reset_wait(headers, now) or 0.0


def classify_response(
    response: requests.Response, *, now: float | None = None
) -> PlatformError | None:
    """`ApiSession` classifier: None for a usable 2xx JSON object (partial `errors` in it are
    the caller's business), else the classified error (table in the module docstring).
    `now` is the wall clock in epoch seconds (for x-rate-limit-reset)."""
    status = response.status_code
    body = json_or_none(response)
    if 200 <= status < 300:
        if isinstance(body, dict):
            return None
        text = f"HTTP {status} reply that is not a JSON object: {_excerpt(response.text or '')}"
        return status_error(ErrorClass.INVALID_RESPONSE, PLATFORM, status, text)
    wall = time.time() if now is None else now
    name, codes, text = _reply_text(body, response)
    code = name if name and name != "about:blank" else (str(codes[0]) if codes else None)
    code = code or f"http_{status}"

    def make(error_class: ErrorClass, message: str = text) -> PlatformError:
        return PlatformError(
            error_class, redact(message), platform=PLATFORM, code=code, http_status=status
        )

    if status == 429:
        if name == _USAGE_CAPPED or _dict(body).get("title") == "UsageCapExceeded":
            capped = make(
                ErrorClass.TRANSIENT, f"usage cap reached, stopping until it resets: {text}"
            )
            capped.code = _USAGE_CAPPED
            period = _dict(body).get("period")
            capped.retry_after = usage_cap_reset(period, dt.datetime.fromtimestamp(wall, dt.UTC))
            return capped
        limited = make(ErrorClass.TRANSIENT, f"rate limited: {text}")
        limited.retry_after = _reset_wait(response.headers, wall)
        return limited
    config_hint = (
        f"{text} (request {safe_url(response.url or '')}). The API version or base URL is not "
        "served: set ANALYTICS_X_API_VERSION to a supported version such as '2' and check "
        "ANALYTICS_X_BASE_URL."
    )
    if status == 400 and name == "invalid-request" and _names_spelling(body):
        return make(
            ErrorClass.PERMANENT_CONFIG,
            f"{text} (request {safe_url(response.url or '')}). X does not take this spelling of "
            "the post fields: set ANALYTICS_X_FIELD_SPELLING to 'post' (post.fields, OpenAPI "
            "2.167) or 'tweet' (tweet.fields, X's docs).",
        )
    if status == 403 and _RETIRED_VERSION_CODES.intersection(codes):
        return make(ErrorClass.PERMANENT_CONFIG, config_hint)
    # X reports a missing post or user in a 200; a 404 means the path (version) is wrong.
    if status == 410 or (status == 404 and name != "resource-not-found"):
        return make(ErrorClass.PERMANENT_CONFIG, config_hint)
    if status in (401, 403):
        return make(ErrorClass.PERMANENT_CREDENTIAL)
    if status >= 500 or status == 408:
        return make(ErrorClass.TRANSIENT)
    if status == 404:
        return make(ErrorClass.PERMANENT_OBJECT)
    return make(ErrorClass.INVALID_RESPONSE)


def token_endpoint(settings: XSettings) -> TokenEndpoint:
    """X's OAuth 2.0 token endpoint (on the API host, under the `2` path like the API)."""
    return TokenEndpoint(PLATFORM, f"{settings.base_url.rstrip('/')}/2/oauth2/token", "basic")


def create_session(
    settings: XSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    http: requests.Session | None = None,
    wall_clock: Callable[[], float] = time.time,
) -> ApiSession:
    """The `ApiSession` an XClient uses (X classifier + x-rate-limit throttle)."""
    return ApiSession(
        PLATFORM,
        lambda response: classify_response(response, now=wall_clock()),
        settings.retry,
        throttle=lambda response: rate_limit_pause(response.headers, wall_clock()),
        sleep=sleep,
        session=http,
    )


def parse_partial_errors(body: Mapping[str, Any]) -> list[XPartialError]:
    """The `errors` entries of a 200 reply (malformed entries are skipped with a warning)."""
    raw = body.get("errors")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid("`errors` of a 200 reply is not a list")
    out = []
    for entry in raw:
        if not isinstance(entry, dict):
            logger.warning("ignoring malformed X partial error: %s", _excerpt(str(entry)))
            continue
        resource_id = entry.get("resource_id") or entry.get("value")
        parts = [str(entry[key]) for key in ("title", "detail") if entry.get(key)]
        out.append(
            XPartialError(
                problem=_problem_name(entry.get("type")) or "unknown",
                resource_id=str(resource_id) if resource_id is not None else None,
                resource_type=entry.get("resource_type"),
                field=entry.get("field"),
                section=entry.get("section"),
                message=_excerpt(": ".join(parts) or json.dumps(entry)),
            )
        )
    return out


def _account_error(account: Account, errors: Sequence[XPartialError]) -> PlatformError:
    """A reply about the account that has `errors` and no `data`."""
    about_user = [e for e in errors if e.resource_type == "user" or e.problem in _OBJECT_PROBLEMS]
    first = (about_user or list(errors))[0] if errors else None
    detail = first.message if first else "no data and no errors"
    if about_user:
        return PlatformError(
            ErrorClass.PERMANENT_CREDENTIAL,
            redact(
                f"X user {account.external_account_id} is not available to this token "
                f"({detail}); check the integration's account id or re-authorize it."
            ),
            platform=PLATFORM,
            code=first.problem if first else None,
        )
    return _invalid(f"X reply without data for user {account.external_account_id}: {detail}")


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Includes:
    media: Mapping[str, Mapping[str, Any]]
    users: Mapping[str, Mapping[str, Any]]


def _parse_includes(body: Mapping[str, Any]) -> _Includes:
    includes = _dict(body.get("includes"))
    media = {
        str(m["media_key"]): m
        for m in includes.get("media") or ()
        if isinstance(m, dict) and m.get("media_key")
    }
    users = {
        str(u["id"]): u for u in includes.get("users") or () if isinstance(u, dict) and u.get("id")
    }
    return _Includes(media, users)


def _media_keys(tweet: Mapping[str, Any]) -> list[str]:
    keys = _dict(tweet.get("attachments")).get("media_keys")
    return [str(k) for k in keys] if isinstance(keys, list) else []


def _media_type(key: str, media: Mapping[str, Mapping[str, Any]]) -> str | None:
    declared = _dict(media.get(key)).get("type")
    if isinstance(declared, str):
        return declared
    return _MEDIA_KEY_TYPES.get(key.partition("_")[0])


def _either(body: Mapping[str, Any], *names: str) -> Any:
    """The value of the first of `names` (one field in its spellings) present and not null."""
    for name in names:
        value = body.get(name)
        if value is not None:
            return value
    return None


def _text_and_entities(tweet: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any] | None]:
    """The full text and its entities: `note_tweet` (`note_post`) for long posts, else `text` /
    `entities`. Entities None means the reply did not carry them (hashtags then come from the
    text)."""
    note = _either(tweet, "note_tweet", "note_post")
    if isinstance(note, dict) and isinstance(note.get("text"), str):
        entities = note.get("entities")
        return note["text"], entities if isinstance(entities, dict) else None
    text, entities = tweet.get("text"), tweet.get("entities")
    return (text if isinstance(text, str) else None), (
        entities if isinstance(entities, dict) else None
    )


def _hashtags(text: str | None, entities: Mapping[str, Any] | None) -> tuple[str, ...]:
    if entities is None:
        return extract_hashtags(text)
    tags: dict[str, None] = {}
    for entry in entities.get("hashtags") or ():
        tag = entry.get("tag") if isinstance(entry, dict) else None
        if isinstance(tag, str):
            for normalized in extract_hashtags(f"#{tag}"):  # same normalization as captions
                tags.setdefault(normalized, None)
    return tuple(tags)


def _has_external_link(entities: Mapping[str, Any] | None) -> bool:
    for entry in _dict(entities).get("urls") or ():
        if not isinstance(entry, dict) or entry.get("media_key"):
            continue
        target = entry.get("expanded_url") or entry.get("url")
        if isinstance(target, str) and not _STATUS_URL.match(target):
            return True
    return False


def detect_format(
    tweet: Mapping[str, Any], media: Mapping[str, Mapping[str, Any]] | None = None
) -> ContentFormat:
    """Format from the attached media (see the module docstring)."""
    keys = _media_keys(tweet)
    if len(keys) >= 2:
        return ContentFormat.CAROUSEL
    if keys:
        kind = _media_type(keys[0], media or {})
        return ContentFormat.VIDEO if kind in _VIDEO_TYPES else ContentFormat.POST
    _, entities = _text_and_entities(tweet)
    return ContentFormat.LINK if _has_external_link(entities) else ContentFormat.TEXT


def _reference(tweet: Mapping[str, Any]) -> tuple[ReferenceType | None, str | None]:
    found: dict[ReferenceType, str | None] = {}
    for entry in _either(tweet, "referenced_tweets", "referenced_posts") or ():
        if not isinstance(entry, dict):
            continue
        try:
            kind = ReferenceType(str(entry.get("type")))
        except ValueError:
            continue
        ref_id = entry.get("id")
        found.setdefault(kind, str(ref_id) if ref_id is not None else None)
    for kind in _REFERENCE_PRIORITY:
        if kind in found:
            return kind, found[kind]
    return None, None


def _parse_created(tweet: Mapping[str, Any], tweet_id: str) -> dt.datetime:
    raw = tweet.get("created_at")
    try:
        created = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        created = None
    if created is None or created.tzinfo is None:
        raise _invalid(f"post {tweet_id} has no valid created_at: {_excerpt(str(raw))}")
    return created.astimezone(dt.UTC)


def parse_tweet(
    tweet: Any,
    media: Mapping[str, Mapping[str, Any]] | None = None,
    users: Mapping[str, Mapping[str, Any]] | None = None,
) -> XPost:
    """One timeline post as an XPost; INVALID_RESPONSE without an id or a valid created_at."""
    if not isinstance(tweet, dict) or not isinstance(tweet.get("id"), str) or not tweet["id"]:
        raise _invalid(f"post without an id: {_excerpt(json.dumps(tweet, default=str))}")
    tweet_id = tweet["id"]
    text, entities = _text_and_entities(tweet)
    author = tweet.get("author_id")
    author_id = str(author) if author is not None else None
    handle = _dict((users or {}).get(author_id or "")).get("username")
    permalink = f"https://x.com/{handle if isinstance(handle, str) and handle else 'i'}"
    reference_type, referenced_id = _reference(tweet)
    item = ContentItem(
        external_content_id=tweet_id,
        format=detect_format(tweet, media),
        published_at=_parse_created(tweet, tweet_id),
        caption=text,
        hashtags=_hashtags(text, entities),
        permalink=f"{permalink}/status/{tweet_id}",
        reference_type=COMMON_REFERENCE_TYPES[reference_type] if reference_type else None,
    )
    return XPost(item, reference_type, referenced_id, author_id)


def _sum_present(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def parse_tweet_metrics(
    tweet: Mapping[str, Any], media: Mapping[str, Mapping[str, Any]] | None = None
) -> ContentMetrics:
    """One looked-up post as ContentMetrics (mapping table in the module docstring).

    Missing means NULL, a returned 0 is 0: no `non_public_metrics` -> clicks NULL; a post
    without videos, or whose videos carry no `view_count` -> video_views NULL.
    """
    public = _dict(tweet.get("public_metrics"))
    non_public = _dict(tweet.get("non_public_metrics"))
    organic = _dict(tweet.get("organic_metrics"))
    impressions = _as_int(public.get("impression_count"))
    for private in (non_public, organic):
        if impressions is None:
            impressions = _as_int(private.get("impression_count"))
    likes = _as_int(public.get("like_count"))
    retweets = _as_int(_either(public, "retweet_count", "repost_count"))
    quotes = _as_int(public.get("quote_count"))
    clicks = None
    for private in (non_public, organic):
        if clicks is None:
            clicks = _sum_present(
                _as_int(private.get("url_link_clicks")), _as_int(private.get("user_profile_clicks"))
            )
    video_views = None
    for key in _media_keys(tweet):
        if _media_type(key, media or {}) in _VIDEO_TYPES:
            views = _as_int(
                _dict(_dict((media or {}).get(key)).get("public_metrics")).get("view_count")
            )
            video_views = _sum_present(video_views, views)
    return ContentMetrics(
        external_content_id=str(tweet.get("id")),
        value_kind=ValueKind.LIFETIME_SNAPSHOT,
        impressions=impressions,
        views=impressions,
        reactions=likes,
        likes=likes,
        comments=_as_int(public.get("reply_count")),
        shares=retweets + quotes if retweets is not None and quotes is not None else None,
        clicks=clicks,
        saves=_as_int(public.get("bookmark_count")),
        video_views=video_views,
    )


# --------------------------------------------------------------------------- the client


@dataclass
class _Collected:
    metrics: dict[str, ContentMetrics] = field(default_factory=dict)
    skipped: dict[str, SkippedObject] = field(default_factory=dict)

    def merge(self, other: _Collected) -> None:
        self.metrics.update(other.metrics)
        for key, value in other.skipped.items():
            self.skipped.setdefault(key, value)


class XClient(SessionClient):
    """X: `external_account_id` is the numeric X user id; the token is an OAuth 2.0 bearer
    token (user context for private metrics, app-only works for the rest)."""

    platform = PLATFORM
    content_metrics_are_lifetime = True

    def __init__(
        self,
        settings: XSettings,
        account: Account,
        *,
        session: ApiSession | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        """A client for the X user of `account`. `session` defaults to
        `create_session(settings, sleep=sleep)`; `clock` (aware UTC) decides which posts are
        young enough for private metrics."""
        super().__init__(account)
        self.settings = settings
        self._session = session or create_session(settings, sleep=sleep)
        self._clock = clock
        self._public_only = False  # True once X refused this token the private metrics

    def _get(self, path: str, params: Mapping[str, Any]) -> Mapping[str, Any]:
        url = f"{self.settings.api_root}/{path}"
        response = self.authorized_request("GET", url, params=params)
        body = json_or_none(response)
        if not isinstance(body, dict):  # classify_response already refused this; be safe
            raise _invalid(f"expected a JSON object from {safe_url(url)}")
        return body

    def token_exchange(self) -> TokenExchange:
        """OAuth 2.0 refresh at `POST {base_url}/2/oauth2/token` (confidential clients
        authenticate with HTTP Basic)."""
        return token_exchange(token_endpoint(self.settings), self.settings.retry, clock=self._clock)

    def _user_path(self, suffix: str = "") -> str:
        return f"users/{quote(self.account.external_account_id, safe='')}{suffix}"

    def describe_account(self) -> AccountDescription:
        """`GET /2/users/{id}?user.fields=public_metrics,protected`: the user behind the id,
        read with the integration's token (an unknown or suspended id is a 200 with `errors`
        only, reported like the follower snapshot's)."""
        body = self._get(self._user_path(), {"user.fields": "public_metrics,protected"})
        data = body.get("data")
        if not isinstance(data, dict):
            raise _account_error(self.account, parse_partial_errors(body))
        name, username = data.get("name"), data.get("username")
        if not isinstance(username, str) or not username:
            raise _invalid(f"X user {self.account.external_account_id} answered without a username")
        shown_name = name if isinstance(name, str) and name else username
        return AccountDescription(self.account.external_account_id, shown_name, f"@{username}")

    # ---- listing

    def list_content_between(self, start: dt.date, end: dt.date) -> Iterator[ContentItem]:
        """The account's own posts of the UTC days `start`..`end` (quotes and replies
        included, retweets not)."""
        for post in self.list_posts_between(start, end):
            yield post.item

    def list_posts(self, day: dt.date) -> Iterator[XPost]:
        """Like `list_content`, with each post's reference type (see XPost)."""
        return self.list_posts_between(day, day)

    def list_posts_between(self, start: dt.date, end: dt.date) -> Iterator[XPost]:
        """Like `list_content_between`, with each post's reference type (see XPost): ONE walk
        of the timeline with `start_time`/`end_time` spanning the whole range (X caps no
        range), ceil(posts / page_size) pages. X serves only a user's 3,200 most recent posts
        (retweets included) whatever the times asked: older days list as empty, one day or a
        range alike, and with `page_size=100` no walk can exceed 32 pages."""
        days_between(start, end)  # validates the range
        since = day_start(start)
        until = day_start(end + dt.timedelta(days=1))
        if until <= TIMELINE_EARLIEST:
            return  # X has no timeline before 2010-11-06 (and refuses such a start_time)
        params: dict[str, Any] = {
            "start_time": max(since, TIMELINE_EARLIEST).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end_time": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "max_results": self.settings.page_size,
            "exclude": "retweets",
            self.settings.spelling.fields_param: self.settings.spelling.timeline_fields,
            "expansions": self.settings.spelling.timeline_expansions,
            "media.fields": TIMELINE_MEDIA_FIELDS,
            "user.fields": TIMELINE_USER_FIELDS,
        }
        path = self._user_path("/tweets")
        seen_ids: set[str] = set()
        seen_tokens: set[str] = set()
        span = str(start) if start == end else f"{start}..{end}"
        subject = f"posts of X user {self.account.external_account_id} on {span} need"
        for _ in capped_pages(PLATFORM, self.settings.max_pages, subject):
            body = self._get(path, params)
            for post in self._page_posts(body):
                post_id = post.item.external_content_id
                if post.is_retweet or post_id in seen_ids:
                    continue
                seen_ids.add(post_id)
                if since <= post.item.published_at < until:
                    yield post
                else:  # end_time is inclusive on X: a post at the next midnight comes too
                    logger.debug("dropping X post %s published outside %s", post_id, span)
            token = _dict(body.get("meta")).get("next_token")
            if not token:
                return
            if not isinstance(token, str) or token in seen_tokens:
                raise _invalid("meta.next_token repeats or is not a string; refusing to loop")
            seen_tokens.add(token)
            params = {**params, "pagination_token": token}

    def _page_posts(self, body: Mapping[str, Any]) -> Iterator[XPost]:
        data = body.get("data")
        errors = parse_partial_errors(body)
        if data is None:
            if errors:
                raise _account_error(self.account, errors)
            return  # `{"meta": {"result_count": 0}}`
        if not isinstance(data, list):
            raise _invalid("timeline reply whose data is not a list")
        for error in errors:
            logger.warning("X timeline of %s: %s", self.account.external_account_id, error.message)
        includes = _parse_includes(body)
        for tweet in data:
            yield parse_tweet(tweet, includes.media, includes.users)

    # ---- metrics

    def fetch_content_metrics(
        self,
        content_ids: Sequence[str],
        day: dt.date,
        *,
        permalinks: Mapping[str, str | None] | None = None,
    ) -> MetricsBatch:
        """Lifetime metrics as of now (X cannot answer for a past `day`), up to 100 ids per
        call; posts younger than 30 days with private metrics, older ones without."""
        ids = list(dict.fromkeys(content_ids))
        done = _Collected()
        valid = []
        for content_id in ids:
            if content_id.isdigit() and len(content_id) <= 19:
                valid.append(content_id)
            else:
                done.skipped[content_id] = SkippedObject(
                    content_id, "invalid-id", "not an X post id (1-19 digits)"
                )
        recent = [i for i in valid if self._wants_private(i)]
        recent_set = set(recent)
        older = [i for i in valid if i not in recent_set]
        size = self.settings.lookup_batch_size
        for group, private in ((recent, True), (older, False)):
            for offset in range(0, len(group), size):
                done.merge(self._fetch_chunk(group[offset : offset + size], private))
        logger.debug(
            "x metrics for %d posts (%s): %d ok, %d skipped",
            len(ids),
            day,
            len(done.metrics),
            len(done.skipped),
        )
        return MetricsBatch(
            metrics=tuple(done.metrics[i] for i in ids if i in done.metrics),
            skipped=tuple(done.skipped[i] for i in ids if i in done.skipped),
        )

    def _wants_private(self, tweet_id: str) -> bool:
        if not self.settings.private_metrics or self._public_only:
            return False
        created = snowflake_time(tweet_id)
        if created is None:
            return False
        return self._clock() - created < PRIVATE_METRICS_WINDOW - PRIVATE_METRICS_MARGIN

    def _stop_private(self, why: str) -> None:
        if not self._public_only:
            self._public_only = True
            logger.info(
                "X refused private metrics for integration %s (%s): public metrics only from "
                "now on; clicks stay NULL. A user-context token gives them.",
                self.account.integration_id,
                why,
            )

    def _fetch_chunk(self, ids: Sequence[str], private: bool) -> _Collected:
        fields = [
            "attachments",
            "public_metrics",
            *(self.settings.private_metrics if private else ()),
        ]
        params = {
            "ids": ",".join(ids),
            self.settings.spelling.fields_param: ",".join(fields),
            "expansions": METRICS_EXPANSIONS,
            "media.fields": METRICS_MEDIA_FIELDS,
        }
        try:
            body = self._get("tweets", params)
        except PlatformError as error:
            if private and error.code == _UNSUPPORTED_AUTH:
                self._stop_private(error.message)
                return self._fetch_chunk(ids, private=False)
            raise
        result, refused = self._parse_lookup(body, ids)
        if refused and private:
            if len(refused) == len(ids):
                self._stop_private("every post of a call was refused")
            result.merge(self._fetch_chunk(refused, private=False))
        elif refused:  # a field refused without private fields: nothing left to drop
            for tweet_id in refused:
                result.skipped[tweet_id] = SkippedObject(
                    tweet_id, _FIELD_REFUSED, "X refused a public field of this post"
                )
        for missing in (i for i in ids if i not in result.metrics and i not in result.skipped):
            result.skipped[missing] = SkippedObject(
                missing, "missing-from-reply", "X returned neither data nor an error for it"
            )
        return result

    @staticmethod
    def _parse_lookup(body: Mapping[str, Any], ids: Sequence[str]) -> tuple[_Collected, list[str]]:
        """Metrics and skipped posts of one lookup reply, and the ids whose private fields X
        refused (left out of `data`: to be fetched again without them)."""
        data = body.get("data", [])
        if not isinstance(data, list):
            raise _invalid("tweets lookup reply whose data is not a list")
        includes = _parse_includes(body)
        asked = set(ids)
        result = _Collected()
        for tweet in data:
            if isinstance(tweet, dict) and tweet.get("id") in asked:
                result.metrics[tweet["id"]] = parse_tweet_metrics(tweet, includes.media)
            else:
                logger.warning("ignoring unexpected item in an X lookup reply")
        refused: dict[str, None] = {}
        for error in parse_partial_errors(body):
            target = error.resource_id
            if target not in asked or target in result.metrics:
                logger.debug("X lookup partial error not about a post asked for: %s", error.message)
                continue
            if error.problem in _FIELD_REFUSED_NAMES:
                refused[target] = None
            else:  # resource-not-found, not-authorized-for-resource, ...: this post only
                result.skipped.setdefault(
                    target, SkippedObject(target, error.problem, error.message)
                )
        return result, [i for i in refused if i not in result.skipped]

    # ---- account

    def fetch_account_metrics_between(
        self, start: dt.date, end: dt.date, *, snapshot_day: dt.date | None
    ) -> dict[dt.date, AccountMetrics]:
        """Only the current follower total, on `snapshot_day` (X v2 has no per-day account
        metrics): one call when `snapshot_day` is in the range, none otherwise; every other
        day and field is NULL."""
        days = days_between(start, end)
        found = {day: AccountMetrics() for day in days}
        if snapshot_day is None or not start <= snapshot_day <= end:
            return found
        body = self._get(self._user_path(), {"user.fields": "public_metrics"})
        data = body.get("data")
        if not isinstance(data, dict):
            raise _account_error(self.account, parse_partial_errors(body))
        followers = _as_int(_dict(data.get("public_metrics")).get("followers_count"))
        found[snapshot_day] = AccountMetrics(followers_total=followers)
        return found
