"""X API v2 routes of the sandbox, in X's wire format (`data` / `includes` / `meta` / `errors`).

- `GET /2/users/{id}/tweets` (start_time, end_time, max_results 5..100, pagination_token,
  since_id, until_id, exclude, tweet.fields, expansions, media.fields, poll.fields,
  user.fields, place.fields): newest first, `meta.next_token` while more posts match.
  `start_time` and `end_time` are both inclusive, as X documents; since_id / until_id exclusive.
  Any span is accepted; a start_time before 2010-11-06T00:00:00Z or after end_time is a 400
  `invalid-request`. Only the user's 3,200 most recent posts are reachable (retweets and
  replies count, deleted posts do not), 800 with `exclude=replies`: older posts are never
  listed, whatever start_time says.
- `GET /2/tweets?ids=` (1..100 ids, same fields): posts in the order asked; unknown or deleted
  ids come back as `errors` entries (`resource-not-found`) in an HTTP 200, next to the posts
  that exist.
- `GET /2/users/{id}` (user.fields, user expansions, tweet.fields; e.g.
  public_metrics.followers_count).

Spelling (`x_spelling` switch): "tweet" (default) speaks X's docs and OpenAPI 2.159
(`tweet.fields`, `retweet_count`, `tweet_count`, `note_tweet`, `referenced_tweets`,
`edit_history_tweet_ids`, `includes.tweets`, problem types under
`https://api.twitter.com/2/problems/`, invalid-request with `errors[].parameters`); "post" speaks
OpenAPI 2.167 (`post.fields`, `repost_count`, `post_count` (+ `media_count`), `note_post`,
`referenced_posts`, `edit_history_post_ids`, `includes.posts`, `https://api.x.com/2/problems/`,
invalid-request with `parameter` / `value`). Each operation accepts exactly the query
parameters and values of that version's OpenAPI (`Dialect`; `test_x_spec.py` compares them):
any other parameter (the other spelling's `*.fields`, `access_token`, ...) or value (a user
expansion on a post route, `max_results=4`, ...) gets X's 400 `invalid-request` problem, after
the version and token checks. Valid fields and expansions the sandbox does not model (geo, lang,
polls, places, ...) are accepted and left out of the reply; an expansion brings its field along
(`author_id`, `attachments`, the references) and the referenced posts come in `includes` with
X's default fields. Problems (bodies with a `type`) are sent as `application/problem+json`.

Every request goes through `_x_call`: artificial latency, API version, bearer token, then the
fault switches (keyed by X user id; a lookup touches the authors of the ids it names):

| switch                      | reply                                                      |
|-----------------------------|------------------------------------------------------------|
| no / expired token          | 401 `{"title": "Unauthorized", "type": "about:blank", ...}`  |
| a sandbox-issued token (`sbx-x-at-...`) unknown, expired or revoked: the same 401 (oauth.py) |
| permission_denied_accounts  | 403 `client-forbidden` problem                              |
| quota_exhausted_accounts    | 429 `UsageCapExceeded` (monthly product cap) problem        |
| transient_failures          | 429 with `x-rate-limit-remaining: 0` and a reset ~1 s ahead |
|                             | (page_limit / buc_limit), 503 problem (server_error), or    |
|                             | 503 HTML from a proxy (unavailable)                         |
| sunset_api_versions, "1.1"  | 403 with v1.1-style `{"errors": [{"code": 453, ...}]}`      |
| any other version than "2"  | 404 `{"errors": [{"code": 34, ...}]}`                       |
| deleted_posts               | `resource-not-found` errors entries in a 200; gone from the |
|                             | timeline                                                     |
| app_only_accounts           | non_public / organic / promoted fields refused: the post is |
|                             | left out of `data` and one `not-authorized-for-field` error |
|                             | per sub-field is added (also for posts older than 30 days)  |
| rate_limit_usage_pct        | `x-rate-limit-remaining` lowered (0 at >= 100 %)            |

Rate-limit headers (`x-rate-limit-limit/-remaining/-reset`) use WALL-CLOCK epoch seconds, not
the sandbox clock: a client compares them with its own clock, as against X. Post data and
metrics follow the sandbox clock.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from itertools import islice, takewhile
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from analytics_sandbox import x_data
from analytics_sandbox.common import CallStart, Outcome, bearer_token, sandbox_call
from analytics_sandbox.faults import TransientKind
from analytics_sandbox.state import SandboxState, get_state

CURRENT_VERSION = "2"
RETIRED_VERSIONS = frozenset({"1.1"})
MAX_IDS = 100
# The user timeline serves only the most recent 3,200 posts (retweets included), 800 with
# `exclude=replies`; its start_time may not be before 2010-11-06T00:00:00Z (X's reference).
TIMELINE_CAP = 3200
TIMELINE_REPLIES_EXCLUDED_CAP = 800
TIMELINE_EARLIEST = dt.datetime(2010, 11, 6, tzinfo=dt.UTC)
DEFAULT_MAX_RESULTS = 10
RATE_LIMIT = 900  # requests per 15-minute window, per endpoint
RATE_WINDOW_S = 900
PROBLEMS = "https://api.twitter.com/2/problems/"  # the host X's docs and OpenAPI 2.159 write
POST_PROBLEMS = "https://api.x.com/2/problems/"  # the host of OpenAPI 2.167

_JSON_TYPE = "application/json; charset=utf-8"
_PROBLEM_TYPE = "application/problem+json"
_ID_RE = re.compile(r"[0-9]{1,19}")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Query-parameter vocabularies, exactly the enums of X's OpenAPI documents (2.159 for the Tweet
# spelling, 2.167 for the Post spelling); `test_x_spec.py` compares them with the specs.
TWEET_FIELDS = _words(
    """article attachments author_id card_uri community_id context_annotations conversation_id
    created_at display_text_range edit_controls edit_history_tweet_ids entities geo id
    in_reply_to_user_id lang media_metadata non_public_metrics note_tweet organic_metrics
    possibly_sensitive promoted_metrics public_metrics referenced_tweets reply_settings scopes
    source suggested_source_links suggested_source_links_with_counts text withheld"""
)
POST_FIELDS = _words(
    """article article_title attachments card_uri community_id context_annotations
    conversation_id created_at display_text_range edit_controls entities geo id lang
    matched_media_notes media_metadata non_public_metrics note_post note_request_suggestions
    organic_metrics paid_partnership possibly_sensitive promoted_metrics public_metrics
    reply_settings scopes source suggested_source_links suggested_source_links_with_counts text
    withheld"""
)
TWEET_EXPANSIONS = _words(
    """article.cover_media article.media_entities attachments.media_keys
    attachments.media_source_tweet attachments.poll_ids author_id edit_history_tweet_ids
    entities.mentions.username geo.place_id in_reply_to_user_id entities.note.mentions.username
    referenced_tweets.id referenced_tweets.id.attachments.media_keys
    referenced_tweets.id.author_id"""
)
POST_EXPANSIONS = _words(
    """article.cover_media article.media_entities attachments.media_keys
    attachments.media_source_tweet attachments.poll_ids author_id edit_history_post_ids
    entities.mentions.username geo.place_id in_reply_to_user_id referenced_posts username"""
)
TWEET_USER_EXPANSIONS = _words("affiliation.user_id most_recent_tweet_id pinned_tweet_id")
POST_USER_EXPANSIONS = _words("affiliation most_recent_post_id pinned_post_id")
TWEET_USER_FIELDS = _words(
    """affiliation confirmed_email connection_status created_at description entities id
    is_identity_verified location most_recent_tweet_id name parody pinned_tweet_id
    profile_banner_url profile_image_url protected public_metrics receives_your_dm subscription
    subscription_type url username verified verified_followers_count verified_type withheld"""
)
POST_USER_FIELDS = _words(
    """confirmed_email connection_status created_at description entities id is_identity_verified
    location name parody profile_banner_url profile_image_url protected public_metrics
    receives_your_dm subscribes_to_you subscription subscription_type url username verified
    verified_followers_count verified_type withheld"""
)
MEDIA_FIELDS = _words(
    """alt_text duration_ms height media_key non_public_metrics organic_metrics
    preview_image_url promoted_metrics public_metrics type url variants width"""
)
POLL_FIELDS = _words("duration_minutes end_datetime id options voting_status")
PLACE_FIELDS = _words("contained_within country country_code full_name geo id name place_type")
EXCLUDES = frozenset({"retweets", "replies"})
PRIVATE_TWEET_FIELDS = ("non_public_metrics", "organic_metrics", "promoted_metrics")

# The query parameters of each operation besides the `*.fields` / `expansions` vocabularies.
TIMELINE_PARAMS = frozenset(
    {"max_results", "pagination_token", "start_time", "end_time", "since_id", "until_id", "exclude"}
)
LOOKUP_PARAMS = frozenset({"ids"})
USER_PARAMS: frozenset[str] = frozenset()


class Operation(StrEnum):
    TIMELINE = "timeline"  # GET /2/users/{id}/tweets (getUsersPosts)
    LOOKUP = "lookup"  # GET /2/tweets (getPostsByIds)
    USER = "user"  # GET /2/users/{id} (getUsersById)


@dataclass(frozen=True)
class Dialect:
    """One spelling of X API v2: what a request may say and how a reply names things.

    "tweet" is X's public docs and OpenAPI 2.159; "post" is OpenAPI 2.167, which renames Tweet
    to Post (`post.fields`, `repost_count`, `post_count`, `note_post`, `referenced_posts`,
    `edit_history_post_ids`, `includes.posts`, problem types under `https://api.x.com`).
    """

    name: str
    spec_version: str
    problems: str  # problem `type` prefix
    fields_param: str  # `tweet.fields` / `post.fields`
    post_fields: frozenset[str]
    post_expansions: frozenset[str]
    user_expansions: frozenset[str]
    user_fields: frozenset[str]
    repost_count: str
    post_count: str
    edit_history: str
    note: str
    referenced: str  # the post field listing referenced posts
    referenced_expansion: str
    includes_posts: str  # `includes.tweets` / `includes.posts`

    @property
    def expansion_fields(self) -> dict[str, str]:
        """Expansion -> the post field it brings along (an expansion implies its field)."""
        return {
            "attachments.media_keys": "attachments",
            "author_id": "author_id",
            "in_reply_to_user_id": "in_reply_to_user_id",
            self.referenced_expansion: self.referenced,
        }

    def vocabularies(self, operation: Operation) -> dict[str, frozenset[str]]:
        """The list-valued parameters of `operation` and the values each accepts."""
        if operation is Operation.USER:
            return {
                "user.fields": self.user_fields,
                "expansions": self.user_expansions,
                self.fields_param: self.post_fields,
            }
        out = {
            self.fields_param: self.post_fields,
            "expansions": self.post_expansions,
            "media.fields": MEDIA_FIELDS,
            "poll.fields": POLL_FIELDS,
            "user.fields": self.user_fields,
            "place.fields": PLACE_FIELDS,
        }
        if operation is Operation.TIMELINE:
            out["exclude"] = EXCLUDES
        return out

    def parameters(self, operation: Operation) -> frozenset[str]:
        """Every query parameter `operation` accepts."""
        plain = {
            Operation.TIMELINE: TIMELINE_PARAMS,
            Operation.LOOKUP: LOOKUP_PARAMS,
            Operation.USER: USER_PARAMS,
        }[operation]
        return plain | frozenset(self.vocabularies(operation))


TWEET_DIALECT = Dialect(
    name="tweet",
    spec_version="2.159",
    problems=PROBLEMS,
    fields_param="tweet.fields",
    post_fields=TWEET_FIELDS,
    post_expansions=TWEET_EXPANSIONS,
    user_expansions=TWEET_USER_EXPANSIONS,
    user_fields=TWEET_USER_FIELDS,
    repost_count="retweet_count",
    post_count="tweet_count",
    edit_history="edit_history_tweet_ids",
    note="note_tweet",
    referenced="referenced_tweets",
    referenced_expansion="referenced_tweets.id",
    includes_posts="tweets",
)
POST_DIALECT = Dialect(
    name="post",
    spec_version="2.167",
    problems=POST_PROBLEMS,
    fields_param="post.fields",
    post_fields=POST_FIELDS,
    post_expansions=POST_EXPANSIONS,
    user_expansions=POST_USER_EXPANSIONS,
    user_fields=POST_USER_FIELDS,
    repost_count="repost_count",
    post_count="post_count",
    edit_history="edit_history_post_ids",
    note="note_post",
    referenced="referenced_posts",
    referenced_expansion="referenced_posts",
    includes_posts="posts",
)
DIALECTS = {dialect.name: dialect for dialect in (TWEET_DIALECT, POST_DIALECT)}


def dialect_of(state: SandboxState) -> Dialect:
    """The spelling the sandbox speaks now (the `x_spelling` switch)."""
    return DIALECTS[state.faults.x_spelling]


# Sub-fields X names, one error each, when it refuses a private field group ("retweet_count"
# is respelled per dialect).
_PRIVATE_SUBFIELDS: dict[str, tuple[str, ...]] = {
    "non_public_metrics": ("impression_count", "url_link_clicks", "user_profile_clicks"),
    "organic_metrics": ("impression_count", "like_count", "reply_count", "retweet_count"),
    "promoted_metrics": ("impression_count", "like_count", "reply_count", "retweet_count"),
}


# --- errors ------------------------------------------------------------------------------------


class XProblem(Exception):
    """A whole-request failure: the HTTP status and the JSON body X sends with it."""

    def __init__(self, status: int, body: dict[str, Any], *, error_code: int | None = None):
        super().__init__(body.get("title") or body.get("detail") or status)
        self.status = status
        self.body = body
        self.error_code = error_code


def unauthorized() -> XProblem:
    body = {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}
    return XProblem(401, body)


def client_forbidden() -> XProblem:
    return XProblem(
        403,
        {
            "client_id": "28561937",
            "detail": "When authenticating requests to the Twitter API v2 endpoints, you must "
            "use keys and tokens from a Twitter developer App that is attached to a Project. "
            "You can create a project via the developer portal.",
            "registration_url": "https://developer.twitter.com/en/docs/projects/overview",
            "title": "Client Forbidden",
            "required_enrollment": "Appropriate Level of API Access",
            "reason": "client-not-enrolled",
            "type": PROBLEMS + "client-forbidden",
        },
    )


def usage_capped() -> XProblem:
    return XProblem(
        429,
        {
            "account_id": 1720481962,
            "product_name": "standard-basic",
            "title": "UsageCapExceeded",
            "period": "Monthly",
            "scope": "Product",
            "detail": "Usage cap exceeded: Monthly product cap",
            "type": PROBLEMS + "usage-capped",
        },
    )


def retired_version() -> XProblem:
    message = (
        "You currently have access to a subset of X API V2 endpoints and limited v1.1 "
        "endpoints (e.g. media post, oauth) only. If you need access to this endpoint, you may "
        "need a different access level. You can learn more here: "
        "https://developer.x.com/en/portal/product"
    )
    return XProblem(403, {"errors": [{"message": message, "code": 453}]}, error_code=453)


def page_does_not_exist() -> XProblem:
    body = {"errors": [{"message": "Sorry, that page does not exist", "code": 34}]}
    return XProblem(404, body, error_code=34)


def invalid_request(message: str, parameter: str, values: Sequence[str]) -> XProblem:
    return XProblem(
        400,
        {
            "errors": [{"parameters": {parameter: list(values)}, "message": message}],
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": PROBLEMS + "invalid-request",
        },
    )


def not_found_error(resource_type: str, parameter: str, value: str) -> dict[str, Any]:
    plural = "ids" if parameter == "ids" else "id"
    return {
        "value": value,
        "detail": f"Could not find {resource_type} with {plural}: [{value}].",
        "title": "Not Found Error",
        "resource_type": resource_type,
        "parameter": parameter,
        "resource_id": value,
        "type": PROBLEMS + "resource-not-found",
    }


def field_authorization_error(tweet_id: str, field_name: str, parameter: str) -> dict[str, Any]:
    return {
        "value": tweet_id,
        "detail": f"Sorry, you are not authorized to access '{field_name}' on the Tweet with "
        f"{parameter}: [{tweet_id}].",
        "title": "Field Authorization Error",
        "resource_type": "tweet",
        "field": field_name,
        "parameter": parameter,
        "resource_id": tweet_id,
        "section": "data",
        "type": PROBLEMS + "not-authorized-for-field",
    }


def x_dumps(payload: Any) -> str:
    """Compact JSON, non-ASCII kept as UTF-8 (as X sends it)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


# --- request parsing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """The `*.fields` / `expansions` of a request, validated."""

    tweet_fields: frozenset[str] = frozenset()  # `tweet.fields` or `post.fields`
    expansions: frozenset[str] = frozenset()
    media_fields: frozenset[str] = frozenset()
    user_fields: frozenset[str] = frozenset()
    dialect: Dialect = TWEET_DIALECT

    @property
    def private_fields(self) -> tuple[str, ...]:
        return tuple(f for f in PRIVATE_TWEET_FIELDS if f in self.tweet_fields)


def check_parameters(params: dict[str, str], dialect: Dialect, operation: Operation) -> None:
    """X's 400 for a query parameter the operation does not take (e.g. `post.fields` where only
    `tweet.fields` exists, `access_token`)."""
    allowed = dialect.parameters(operation)
    for name, value in params.items():
        if name not in allowed:
            raise invalid_request(
                f"The query parameter [{name}] is not one of [{','.join(sorted(allowed))}]",
                name,
                [value],
            )


def _list_param(
    params: dict[str, str], name: str, dialect: Dialect, operation: Operation
) -> frozenset[str]:
    raw = params.get(name)
    if raw is None:
        return frozenset()
    values = raw.split(",")
    allowed = dialect.vocabularies(operation)[name]
    bad = [value for value in values if value not in allowed]
    if bad:
        raise invalid_request(
            f"The `{name}` query parameter value [{bad[0]}] is not one of "
            f"[{','.join(sorted(allowed))}]",
            name,
            bad,
        )
    return frozenset(values)


def parse_selection(params: dict[str, str], dialect: Dialect, operation: Operation) -> Selection:
    """The validated selection of a request (unknown parameters are X's 400 problem)."""
    check_parameters(params, dialect, operation)
    for name in dialect.vocabularies(operation):
        _list_param(params, name, dialect, operation)  # poll.fields & co: checked, not modeled
    return Selection(
        tweet_fields=_list_param(params, dialect.fields_param, dialect, operation),
        expansions=_list_param(params, "expansions", dialect, operation),
        media_fields=_list_param(params, "media.fields", dialect, operation),
        user_fields=_list_param(params, "user.fields", dialect, operation),
        dialect=dialect,
    )


def _check_id(name: str, value: str) -> str:
    if not _ID_RE.fullmatch(value):
        raise invalid_request(
            f"The `{name}` query parameter value [{value}] does not match ^[0-9]{{1,19}}$",
            name,
            [value],
        )
    return value


def _parse_time(name: str, raw: str | None) -> dt.datetime | None:
    if raw is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(raw)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise invalid_request(
            f"Invalid '{name}':'{raw}'. '{name}' must be a RFC 3339 timestamp "
            "(YYYY-MM-DDTHH:mm:ssZ).",
            name,
            [raw],
        )
    return parsed.astimezone(dt.UTC)


def _minutes(moment: dt.datetime) -> str:
    """A time as X quotes it back in an error message: `2026-01-01T00:00Z`."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def _check_time_range(
    params: dict[str, str], start: dt.datetime | None, end: dt.datetime | None
) -> None:
    """The user timeline's start_time / end_time limits: not before 2010-11-06T00:00:00Z
    (end_time one second later), and start_time not after end_time."""
    for name, moment, earliest in (
        ("start_time", start, TIMELINE_EARLIEST),
        ("end_time", end, TIMELINE_EARLIEST + dt.timedelta(seconds=1)),
    ):
        if moment is not None and moment < earliest:
            raise invalid_request(
                f"Invalid '{name}':'{_minutes(moment)}'. '{name}' must be on or after "
                f"{_minutes(earliest)}",
                name,
                [params[name]],
            )
    if start is not None and end is not None and start > end:
        raise invalid_request(
            f"Invalid 'start_time':'{_minutes(start)}'. 'start_time' must be on or before "
            f"'end_time':'{_minutes(end)}'",
            "start_time",
            [params["start_time"]],
        )


def _parse_max_results(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_MAX_RESULTS
    if not raw.isdigit() or not 5 <= int(raw) <= 100:
        raise invalid_request(
            f"The `max_results` query parameter value [{raw}] is not between 5 and 100",
            "max_results",
            [raw],
        )
    return int(raw)


def encode_token(tweet_id: str) -> str:
    """An opaque lower-case next_token (like X's) that continues after `tweet_id`."""
    return base64.b32encode(f"x|{tweet_id}".encode()).decode().rstrip("=").lower()


def decode_token(token: str) -> int:
    try:
        raw = base64.b32decode(token.upper() + "=" * (-len(token) % 8)).decode()
        prefix, _, tweet_id = raw.partition("|")
        if prefix != "x" or not tweet_id.isdigit():
            raise ValueError(token)
        return int(tweet_id)
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise invalid_request(
            f"The `pagination_token` query parameter value [{token}] is not valid",
            "pagination_token",
            [token],
        ) from err


# --- rendering ---------------------------------------------------------------------------------


def x_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _render_entities(entities: x_data.Entities) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if entities.hashtags:
        out["hashtags"] = [
            {"start": h.start, "end": h.end, "tag": h.tag} for h in entities.hashtags
        ]
    if entities.mentions:
        out["mentions"] = [
            {"start": m.start, "end": m.end, "username": m.username, "id": m.id}
            for m in entities.mentions
        ]
    if entities.urls:
        urls = []
        for u in entities.urls:
            entry: dict[str, Any] = {
                "start": u.start,
                "end": u.end,
                "url": u.url,
                "expanded_url": u.expanded_url,
                "display_url": u.display_url,
            }
            if u.media_key is not None:
                entry["media_key"] = u.media_key
            urls.append(entry)
        out["urls"] = urls
    return out


def _public_metrics(m: x_data.TweetMetrics, dialect: Dialect) -> dict[str, int]:
    return {
        dialect.repost_count: m.retweets,
        "reply_count": m.replies,
        "like_count": m.likes,
        "quote_count": m.quotes,
        "bookmark_count": m.bookmarks,
        "impression_count": m.impressions,
    }


def _private_metrics(name: str, m: x_data.TweetMetrics, dialect: Dialect) -> dict[str, int]:
    out = {"impression_count": m.impressions}
    if name == "organic_metrics":
        out.update(like_count=m.likes, reply_count=m.replies)
        out[dialect.repost_count] = m.retweets
    if m.link_clicks is not None:  # X leaves url_link_clicks out for posts without a link
        out["url_link_clicks"] = m.link_clicks
    out["user_profile_clicks"] = m.profile_clicks
    return out


def render_tweet(
    tweet: x_data.SyntheticTweet, sel: Selection, state: SandboxState, now: dt.datetime
) -> dict[str, Any]:
    """The post with `id`, `text`, `edit_history_tweet_ids` (`edit_history_post_ids`; X's
    defaults) and the requested fields it models (private ones only when the caller already
    checked they are allowed), named in the selection's dialect."""
    names = sel.dialect
    out: dict[str, Any] = {"id": tweet.id, "text": tweet.text, names.edit_history: [tweet.id]}
    # An expansion brings the field it expands along, as on X.
    wanted = sel.tweet_fields | {
        name for expansion, name in names.expansion_fields.items() if expansion in sel.expansions
    }
    metrics = x_data.metrics_for(tweet, now.date(), state.config)
    if "created_at" in wanted:
        out["created_at"] = x_time(tweet.created_at)
    if "author_id" in wanted:
        out["author_id"] = tweet.user_id
    if "conversation_id" in wanted:
        out["conversation_id"] = tweet.referenced_id if tweet.in_reply_to_user_id else tweet.id
    if "in_reply_to_user_id" in wanted and tweet.in_reply_to_user_id:
        out["in_reply_to_user_id"] = tweet.in_reply_to_user_id
    if "attachments" in wanted and tweet.media:
        out["attachments"] = {"media_keys": [media.media_key for media in tweet.media]}
    if "entities" in wanted and not tweet.entities.is_empty():
        out["entities"] = _render_entities(tweet.entities)
    if names.note in wanted and tweet.note_text is not None:
        note: dict[str, Any] = {"text": tweet.note_text}
        if tweet.note_entities is not None and not tweet.note_entities.is_empty():
            note["entities"] = _render_entities(tweet.note_entities)
        out[names.note] = note
    if names.referenced in wanted and tweet.referenced_id is not None:
        out[names.referenced] = [{"type": tweet.kind.value, "id": tweet.referenced_id}]
    if "public_metrics" in wanted:
        out["public_metrics"] = _public_metrics(metrics, names)
    for name in ("non_public_metrics", "organic_metrics"):
        if name in wanted:
            out[name] = _private_metrics(name, metrics, names)
    return out


def _private_refusals(
    tweet: x_data.SyntheticTweet,
    sel: Selection,
    app_only: bool,
    now: dt.datetime,
    parameter: str,
) -> list[dict[str, Any]]:
    """Field Authorization Errors for the private fields this post cannot have."""
    errors: list[dict[str, Any]] = []
    for name in sel.private_fields:
        refused = (
            app_only
            or name == "promoted_metrics"  # no sandbox post is promoted
            or not x_data.private_metrics_available(tweet, now)
        )
        if refused:
            errors.extend(
                field_authorization_error(
                    tweet.id,
                    f"{name}.{sel.dialect.repost_count if sub == 'retweet_count' else sub}",
                    parameter,
                )
                for sub in _PRIVATE_SUBFIELDS[name]
            )
    return errors


def _render_media(
    media: x_data.Media,
    sel: Selection,
    tweet: x_data.SyntheticTweet,
    state: SandboxState,
    now: dt.datetime,
) -> dict[str, Any]:
    out: dict[str, Any] = {"media_key": media.media_key, "type": media.type.value}
    if "duration_ms" in sel.media_fields and media.duration_ms is not None:
        out["duration_ms"] = media.duration_ms
    if "public_metrics" in sel.media_fields and media.type is not x_data.MediaType.PHOTO:
        views = dict(x_data.metrics_for(tweet, now.date(), state.config).media_views)
        out["public_metrics"] = {"view_count": views[media.media_key]}
    return out


def render_user(
    user_id: str, sel: Selection, state: SandboxState, now: dt.datetime
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": user_id,
        "name": x_data.display_name(user_id),
        "username": x_data.username(user_id),
    }
    if "public_metrics" in sel.user_fields:
        total = x_data.followers(user_id, now.date(), state.config)
        out["public_metrics"] = {
            "followers_count": total,
            "following_count": 100 + total // 50,
            sel.dialect.post_count: 1_000 + total // 7,
            "listed_count": total // 400,
            "like_count": total // 3,
        }
        if sel.dialect is POST_DIALECT:  # 2.159's UserPublicMetrics has no media_count
            out["public_metrics"]["media_count"] = total // 90
    if "created_at" in sel.user_fields:
        out["created_at"] = "2015-03-02T10:00:00.000Z"
    if "protected" in sel.user_fields:
        out["protected"] = False
    return out


@dataclass
class TweetPage:
    """Posts rendered for one reply, with the includes and errors they bring."""

    sel: Selection
    app_only: bool
    now: dt.datetime
    parameter: str  # how X names the ids in errors: "ids" (lookup) or "id" (timeline)
    data: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    media: dict[str, dict[str, Any]] = field(default_factory=dict)
    authors: dict[str, None] = field(default_factory=dict)
    referenced: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, tweet: x_data.SyntheticTweet, state: SandboxState) -> None:
        refusals = _private_refusals(tweet, self.sel, self.app_only, self.now, self.parameter)
        if refusals:  # X leaves the whole post out of `data`
            self.errors.extend(refusals)
            return
        self.data.append(render_tweet(tweet, self.sel, state, self.now))
        if "attachments.media_keys" in self.sel.expansions:
            for media in tweet.media:
                self.media[media.media_key] = _render_media(media, self.sel, tweet, state, self.now)
        if "author_id" in self.sel.expansions:
            self.authors[tweet.user_id] = None
        if self.sel.dialect.referenced_expansion in self.sel.expansions and tweet.referenced_id:
            self._add_referenced(tweet.referenced_id, state)

    def _add_referenced(self, tweet_id: str, state: SandboxState) -> None:
        """A referenced post in `includes.tweets` (`includes.posts`), with X's default fields."""
        referenced = x_data.decode_tweet_id(tweet_id, state.config)
        if (
            referenced is not None
            and referenced.created_at <= self.now
            and tweet_id not in state.faults.deleted_posts
        ):
            plain = Selection(dialect=self.sel.dialect)
            self.referenced[tweet_id] = render_tweet(referenced, plain, state, self.now)

    def body(self, state: SandboxState, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.data:
            body["data"] = self.data
        includes: dict[str, Any] = {}
        if self.media:
            includes["media"] = list(self.media.values())
        if self.authors:
            includes["users"] = [render_user(u, self.sel, state, self.now) for u in self.authors]
        if self.referenced:
            includes[self.sel.dialect.includes_posts] = list(self.referenced.values())
        if includes:
            body["includes"] = includes
        if self.errors:
            body["errors"] = self.errors
        if meta is not None:
            body["meta"] = meta
        return body


# --- operations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallContext:
    seq: int
    now: dt.datetime  # the sandbox clock, read once per request
    app_only: bool
    dialect: Dialect = TWEET_DIALECT


def _optional_id(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    return None if raw is None else int(_check_id(name, raw))


def timeline(
    user_id: str, params: dict[str, str], state: SandboxState, ctx: CallContext
) -> dict[str, Any]:
    sel = parse_selection(params, ctx.dialect, Operation.TIMELINE)
    start = _parse_time("start_time", params.get("start_time"))
    end = _parse_time("end_time", params.get("end_time"))
    _check_time_range(params, start, end)
    limit = _parse_max_results(params.get("max_results"))
    exclude = _list_param(params, "exclude", ctx.dialect, Operation.TIMELINE)
    since_id, until_id = _optional_id(params, "since_id"), _optional_id(params, "until_id")
    token = params.get("pagination_token")
    before = decode_token(token) if token else None
    if not x_data.user_exists(user_id, state.config):
        return {"errors": [not_found_error("user", "id", user_id)]}
    deleted = state.faults.deleted_posts
    reachable = TIMELINE_REPLIES_EXCLUDED_CAP if "replies" in exclude else TIMELINE_CAP
    floor = x_data.timeline_floor(
        user_id, limit=reachable, now=ctx.now, config=state.config, hidden=deleted
    )
    candidates = (
        tweet
        for tweet in takewhile(
            lambda tweet: floor is None or tweet.sort_key() >= floor,
            x_data.iter_tweets_desc(
                user_id, start=start, end=end, now=ctx.now, config=state.config, before_id=before
            ),
        )
        if tweet.id not in deleted
        and not ("retweets" in exclude and tweet.kind is x_data.TweetKind.RETWEET)
        and not ("replies" in exclude and tweet.kind is x_data.TweetKind.REPLY)
        and (since_id is None or int(tweet.id) > since_id)  # both exclusive, as on X
        and (until_id is None or int(tweet.id) < until_id)
    )
    found = list(islice(candidates, limit + 1))
    tweets = found[:limit]
    page = TweetPage(sel, ctx.app_only, ctx.now, "id")
    for tweet in tweets:
        page.add(tweet, state)
    meta: dict[str, Any] = {"result_count": len(tweets)}
    if tweets:
        meta = {"newest_id": tweets[0].id, "oldest_id": tweets[-1].id, **meta}
        if len(found) > limit:
            meta["next_token"] = encode_token(tweets[-1].id)
    return page.body(state, meta)


def parse_ids(params: dict[str, str]) -> list[str]:
    raw = params.get("ids")
    if raw is None or raw == "":
        raise invalid_request("The `ids` query parameter can not be empty", "ids", [raw or ""])
    ids = raw.split(",")
    if len(ids) > MAX_IDS:
        raise invalid_request(
            f"The number of values in the `ids` query parameter list [{len(ids)}] is not "
            f"between 1 and {MAX_IDS}",
            "ids",
            [raw],
        )
    for tweet_id in ids:
        _check_id("ids", tweet_id)
    return ids


def lookup(params: dict[str, str], state: SandboxState, ctx: CallContext) -> dict[str, Any]:
    ids = parse_ids(params)
    sel = parse_selection(params, ctx.dialect, Operation.LOOKUP)
    page = TweetPage(sel, ctx.app_only, ctx.now, "ids")
    deleted = state.faults.deleted_posts
    for tweet_id in dict.fromkeys(ids):
        tweet = x_data.decode_tweet_id(tweet_id, state.config)
        if tweet is None or tweet.created_at > ctx.now or tweet_id in deleted:
            page.errors.append(not_found_error("tweet", "ids", tweet_id))
        else:
            page.add(tweet, state)
    return page.body(state)


def user_lookup(
    user_id: str, params: dict[str, str], state: SandboxState, ctx: CallContext
) -> dict[str, Any]:
    sel = parse_selection(params, ctx.dialect, Operation.USER)
    if not x_data.user_exists(user_id, state.config):
        return {"errors": [not_found_error("user", "id", user_id)]}
    return {"data": render_user(user_id, sel, state, ctx.now)}


# --- the request pipeline ----------------------------------------------------------------------


@dataclass
class Prepared:
    """A parsed request: the X users it touches and how to produce its JSON body."""

    user_ids: tuple[str, ...]
    run: Callable[[CallContext], dict[str, Any]]
    batch_size: int | None = None


def rate_limit_headers(
    state: SandboxState, wall: float, *, remaining: int | None = None
) -> dict[str, str]:
    """`x-rate-limit-*` for a 15-minute window of wall-clock time."""
    reset = (int(wall) // RATE_WINDOW_S + 1) * RATE_WINDOW_S
    if remaining is None:
        pct = state.faults.rate_limit_usage_pct
        if pct is None:
            remaining = max(1, RATE_LIMIT - 1 - state.log.count() % RATE_LIMIT)
        else:
            remaining = max(0, RATE_LIMIT - math.ceil(RATE_LIMIT * pct / 100))
    return {
        "x-rate-limit-limit": str(RATE_LIMIT),
        "x-rate-limit-remaining": str(remaining),
        "x-rate-limit-reset": str(reset),
    }


def transient_response(kind: TransientKind, state: SandboxState, wall: float) -> Response:
    if kind is TransientKind.UNAVAILABLE:  # a proxy answers: HTML, no rate-limit headers
        html = "<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
        html += "<center><h1>503 Service Temporarily Unavailable</h1></center></body></html>"
        return Response(html, 503, media_type="text/html")
    if kind is TransientKind.SERVER_ERROR:
        body = {
            "title": "Service Unavailable",
            "detail": "Service Unavailable",
            "type": "about:blank",
            "status": 503,
        }
        return Response(
            x_dumps(body), 503, rate_limit_headers(state, wall), media_type=_PROBLEM_TYPE
        )
    headers = rate_limit_headers(state, wall, remaining=0)
    headers["x-rate-limit-reset"] = str(int(wall) + 1)  # the window reopens in about a second
    body = {
        "title": "Too Many Requests",
        "detail": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
    }
    return Response(x_dumps(body), 429, headers, media_type=_PROBLEM_TYPE)


async def _x_call(request: Request, prepared: Prepared) -> Response:
    return await sandbox_call(
        request,
        partial(_x_answer, request, prepared),
        page_ids=prepared.user_ids,
        batch_size=prepared.batch_size,
    )


def _x_answer(request: Request, prepared: Prepared, call: CallStart) -> Outcome:
    """Version, token and account checks, the fault switches, then the reply."""
    state, seq, now = call.state, call.seq, call.now
    wall = time.time()
    version = request.path_params["version"]
    users = prepared.user_ids
    faults = state.faults
    dialect = dialect_of(state)
    fault: str | None = None
    error_code: int | None = None
    try:
        sunset = faults.any_in("sunset_api_versions", (version,))
        if sunset or version in RETIRED_VERSIONS:
            fault = "sunset_version" if sunset else None
            raise retired_version()
        if version != CURRENT_VERSION:
            raise page_does_not_exist()
        token = bearer_token(request)
        if token is None:
            raise unauthorized()
        if state.tokens.check_access("x", token, now) is not None:
            fault = "oauth_token"
            raise unauthorized()
        if faults.any_expired(users):
            fault = "expired_token"
            raise unauthorized()
        if faults.any_in("permission_denied_accounts", users):
            fault = "permission_denied"
            raise client_forbidden()
        if faults.any_in("quota_exhausted_accounts", users):
            fault = "quota_exhausted"
            raise usage_capped()
        kind = faults.take_transient(users)
        if kind is not None:
            fault = f"transient:{kind.value}"
            response = transient_response(kind, state, wall)
        else:
            app_only = faults.any_in("app_only_accounts", users)
            body = respell_problems(prepared.run(CallContext(seq, now, app_only, dialect)), dialect)
            if app_only and any(
                e.get("type", "").endswith("not-authorized-for-field")
                for e in body.get("errors", ())
            ):
                fault = "app_only"
            response = Response(
                x_dumps(body), 200, rate_limit_headers(state, wall), media_type=_JSON_TYPE
            )
    except XProblem as problem:
        error_code = problem.error_code
        headers = {} if problem.status == 404 else rate_limit_headers(state, wall)
        body = respell_problems(problem.body, dialect)
        # A problem (RFC 7807, with a `type`) travels as application/problem+json, a v1.1-style
        # `{"errors": [{"code": ..}]}` as application/json: the spec's two `default` replies.
        media_type = _PROBLEM_TYPE if "type" in body else _JSON_TYPE
        response = Response(x_dumps(body), problem.status, headers, media_type=media_type)
    return Outcome(response, error_code, fault)


def respell_problems(body: dict[str, Any], dialect: Dialect) -> dict[str, Any]:
    """Problem `type`s (top level and in `errors`) under the dialect's host."""

    def respelled(entry: Any) -> Any:
        kind = entry.get("type") if isinstance(entry, dict) else None
        if isinstance(kind, str) and kind.startswith(PROBLEMS) and dialect.problems != PROBLEMS:
            return {**entry, "type": dialect.problems + kind.removeprefix(PROBLEMS)}
        return entry

    out = respelled(body)
    if isinstance(out.get("errors"), list):
        out = {**out, "errors": [respelled(entry) for entry in out["errors"]]}
    if dialect is POST_DIALECT and out.get("type") == POST_PROBLEMS + "invalid-request":
        # 2.167's InvalidRequestProblem names one parameter and value instead of `errors`.
        first = out["errors"][0]
        parameter, values = next(iter(first["parameters"].items()))
        out = {
            "type": out["type"],
            "title": out["title"],
            "detail": first["message"],
            "parameter": parameter,
            "value": ",".join(values),
            "status": 400,
        }
    return out


def _params(request: Request) -> dict[str, str]:
    """Query parameters, the last value winning (X rejects repeats; the sandbox is lenient)."""
    return dict(request.query_params.items())


def _failing(problem: XProblem) -> Callable[[CallContext], dict[str, Any]]:
    def fail(ctx: CallContext) -> dict[str, Any]:
        raise problem

    return fail


# --- endpoints ---------------------------------------------------------------------------------


UserOperation = Callable[[str, dict[str, str], SandboxState, CallContext], dict[str, Any]]


async def _user_call(request: Request, operation: UserOperation) -> Response:
    """A request on `/users/{user_id}...`: a malformed id fails before touching any user."""
    state = get_state(request.app)
    user_id = request.path_params["user_id"]
    params = _params(request)
    try:
        _check_id("id", user_id)
    except XProblem as problem:
        return await _x_call(request, Prepared((), _failing(problem)))
    return await _x_call(
        request, Prepared((user_id,), lambda ctx: operation(user_id, params, state, ctx))
    )


async def timeline_endpoint(request: Request) -> Response:
    return await _user_call(request, timeline)


async def lookup_endpoint(request: Request) -> Response:
    state = get_state(request.app)
    params = _params(request)
    try:
        ids = parse_ids(params)
    except XProblem as problem:
        return await _x_call(request, Prepared((), _failing(problem)))
    authors = (x_data.author_of(tweet_id, state.config) for tweet_id in ids)
    users = tuple(dict.fromkeys(a for a in authors if a is not None))
    return await _x_call(
        request, Prepared(users, lambda ctx: lookup(params, state, ctx), batch_size=len(ids))
    )


async def user_endpoint(request: Request) -> Response:
    return await _user_call(request, user_lookup)


class XVersionConvertor(Convertor[str]):
    """Matches `2` or `1.1`-like path segments only: Graph's `v25.0` and LinkedIn's `rest`
    never reach these routes."""

    regex = r"[0-9]+(?:\.[0-9]+)?"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("x_api_version", XVersionConvertor())


def routes() -> list[BaseRoute]:
    return [
        Route(
            "/{version:x_api_version}/users/{user_id}/tweets", timeline_endpoint, methods=["GET"]
        ),
        Route("/{version:x_api_version}/users/{user_id}", user_endpoint, methods=["GET"]),
        Route("/{version:x_api_version}/tweets", lookup_endpoint, methods=["GET"]),
    ]
