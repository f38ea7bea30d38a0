"""Graph API routes of the sandbox (Facebook Pages, and Instagram on the same host), in Graph's
wire format.

Facebook objects:
- `GET /{version}/{page_id}/posts` (fields, since, until, limit, after; cursor paging)
- `GET /{version}/{page_id}/video_reels` (the page's reels: id, description, created_time,
  permalink_url, updated_time, length; same paging)
- `GET /{version}/{page_id}/insights?metric=..&period=day&since=&until=`: daily page insights,
  each value stamped with `end_time` = the next US-Pacific midnight (07:00 or 08:00 UTC);
  page_impressions*, page_fans*, page_engaged_users are deprecated (invalid metric). At most
  90 days between since and until (the documented limit; more answers "(#100) There cannot be
  more than 90 days (7776000 s) between since and until"), until after since (else 100).
- `GET /{version}/{object_id}` (a post, a page, or a video: `9<n><page_id>`)
- `GET /{version}/{video_id}/video_insights?metric=..`: reel metrics (blue_reels_play_count,
  post_impressions_unique, post_video_likes_by_reaction_type, post_video_social_actions, ...);
  breakdown values list non-zero keys only
- `POST /{version}/` with `batch=[...]` (at most 50 items; each item a JSON *string* body)
- `GET /{version}/debug_token?input_token=..` (also as a batch item, the way our clients ask
  it: the token stays out of the request line): a Page token's `expires_at` 0 (never),
  `data_access_expires_at` 90 days ahead, `is_valid`, `scopes`; the `meta_token_limits` switch
  (keyed by a token's fingerprint, or "*") makes a token expire or lose data access soon, or
  be invalid. A request with `input_token` in its query string is flagged in the request log
  like one with `access_token` there (and its value is masked).

Instagram objects (IG account ids start with 1784; media ids with 18) are served by
`sandbox.instagram` through the same pipeline.

Every request goes through `_graph_call`: artificial latency, bearer-token check (the token is
read only from `Authorization: Bearer`), the fault switches (keyed by ACCOUNT id: the page or
IG account a request touches), usage headers, then the request log. Fault replies:

| switch                     | reply                                                         |
|----------------------------|---------------------------------------------------------------|
| sunset_api_versions        | 400, code 2635 "You are calling a deprecated version ..."      |
| expired_token_pages        | 400, code 190 / 463 "Session has expired"                      |
| permission_denied_accounts | 403, code 10 (Instagram) / 200 (Facebook) permission error     |
| quota_exhausted_accounts   | 400, BUC throttle 80001 (pages) / 80002 (IG) with              |
|                            |   `estimated_time_to_regain_access` of 6 hours                 |
| transient_failures         | see TransientKind (32 / 4 for IG, 80001 / 80002, 500, 503)     |
| deleted_posts              | reading the post/media (alone or in a batch) fails with 100/33 |
| invalid_metrics            | those metric names fail the call: "(#100) The value must be a  |
|                            |   valid insights metric" (Facebook), Instagram's own messages  |
| invalid_metrics_for        | the same, for one kind of object only: {"VIDEO/FEED":          |
|                            |   ["views"]} (an IG media_type/media_product_type), "post",    |
|                            |   "reel" (video_insights), "page" (page insights)              |
| null_batch_items           | the next batch items come back `null`                          |

Deliberate choices, where Graph itself is not one thing:

- A deleted post (`deleted_posts`) stays listed by `/posts` (it was listed before it was
  deleted) but reading it, alone or as a batch item, fails with 100/33.
- An expired token or a transient failure fails the whole request, batch included (Graph
  checks the token and the rate limits before it runs any batch item).
- `comments` / `reactions` edges always come back with an empty `data` list: only their
  `summary` carries numbers.
- JSON is compact with `/` escaped as `\\/`, as Graph sends it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from analytics_sandbox import data, instagram
from analytics_sandbox.common import CallStart, Outcome, bearer_token, sandbox_call
from analytics_sandbox.data import is_ig_user_id
from analytics_sandbox.faults import TransientKind
from analytics_sandbox.graph import (
    DEBUG_TOKEN,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    CallContext,
    FieldSpec,
    GraphError,
    Operation,
    debug_token_body,
    decode_cursor,
    expired_token,
    graph_dumps,
    graph_time,
    insights_paging,
    invalid_metric,
    invalid_parameter,
    listing_body,
    metric_names,
    missing_token,
    nonexisting_field,
    page_of,
    parse_fields,
    parse_limit,
    parse_time,
    too_many_batch_items,
    trace_id,
    unknown_object,
    unknown_path,
    version_expired,
)
from analytics_sandbox.seeds import hash_int
from analytics_sandbox.state import SandboxState, get_state

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_BATCH_ITEMS",
    "MAX_LIMIT",
    "CallContext",
    "FieldSpec",
    "GraphError",
    "Operation",
    "execute",
    "graph_dumps",
    "parse_fields",
    "routes",
    "touched_accounts",
]

MAX_BATCH_ITEMS = 50
DEFAULT_POST_FIELDS = "created_time,message,id"
DEFAULT_PAGE_FIELDS = "name,id"
DEFAULT_VIDEO_FIELDS = "id"
LATEST_VERSION = "v26.0"  # named in the version-expired reply
QUOTA_REGAIN_MINUTES = 360  # a used-up long-window quota: back in 6 hours

_VERSION_RE = re.compile(r"v[0-9]+\.0")
_JSON_TYPE = "application/json; charset=UTF-8"

VALID_POST_METRICS: dict[str, tuple[str, str]] = {
    "post_media_view": (
        "Lifetime Media views",
        "Lifetime: The number of times your post was on screen.",
    ),
    "post_total_media_view_unique": (
        "Lifetime Post Viewers",
        "Lifetime: The number of people who saw your post at least once.",
    ),
    "post_reactions_by_type_total": (
        "Lifetime Total post Reactions by Type.",
        "Lifetime: Total post reactions by type.",
    ),
    "post_clicks": (
        "Lifetime Post Clicks",
        "Lifetime: The number of clicks anywhere in your post.",
    ),
    "post_video_views": (
        "Lifetime Total Video Views",
        "Lifetime: Total number of times your video was viewed for 3 seconds or more.",
    ),
    "post_reactions_like_total": (
        "Lifetime Total Like Reactions of a post.",
        'Lifetime: Total "like" reactions of a post.',
    ),
}
DEPRECATED_POST_METRICS = frozenset(
    {
        "post_impressions",
        "post_impressions_unique",
        "post_impressions_paid",
        "post_impressions_paid_unique",
        "post_impressions_organic",
        "post_impressions_organic_unique",
        "post_impressions_fan",
        "post_engaged_users",
    }
)

VALID_REEL_METRICS: dict[str, tuple[str, str]] = {
    "blue_reels_play_count": (
        "Plays",
        "The number of times your reel starts to play after an impression is already counted.",
    ),
    "fb_reels_total_plays": ("Total plays", "Plays of your reel, replays included."),
    "fb_reels_replay_count": ("Replays", "The number of times your reel was replayed."),
    "post_impressions_unique": (
        "Accounts Center accounts reached",
        "The number of people who saw your reel at least once.",
    ),
    "post_video_avg_time_watched": (
        "Average watch time",
        "The average number of milliseconds your reel was played, replays included.",
    ),
    "post_video_view_time": (
        "Watch time",
        "The total number of milliseconds your reel played, replays included.",
    ),
    "post_video_likes_by_reaction_type": (
        "Reactions",
        "The number of reactions on your reel, by type.",
    ),
    "post_video_social_actions": (
        "Interactions",
        "The number of comments on your reel and the number of times it was shared.",
    ),
}
VALID_PAGE_METRICS: dict[str, tuple[str, str]] = {
    "page_media_view": ("Daily Media views", "The number of times your content was on screen."),
    "page_total_media_view_unique": (
        "Daily Viewers",
        "The number of people who saw your content at least once.",
    ),
    "page_daily_follows_unique": (
        "Daily new follows",
        "The number of people who followed your Page.",
    ),
    "page_daily_follows": ("Daily follows", "The number of follows of your Page."),
    "page_views_total": ("Daily Page views", "The number of times your Page profile was viewed."),
    "page_post_engagements": (
        "Daily Post Engagements",
        "The number of times people interacted with your posts.",
    ),
}
DEPRECATED_PAGE_METRICS = frozenset(
    {
        "page_impressions",
        "page_impressions_unique",
        "page_impressions_paid",
        "page_impressions_organic_unique_v2",
        "page_fans",
        "page_fan_adds",
        "page_fan_adds_unique",
        "page_fan_removes",
        "page_engaged_users",
        "page_website_clicks_logged_in_unique",
    }
)
_PAGE_DAY_FIELDS: dict[str, str] = {
    "page_media_view": "media_view",
    "page_total_media_view_unique": "media_view_unique",
    "page_daily_follows_unique": "daily_follows_unique",
    "page_daily_follows": "daily_follows",
    "page_views_total": "views_total",
    "page_post_engagements": "post_engagements",
}
# "Only 90 days of insights can be viewed at one time when using the since and until
# parameters" (Graph's Page Insights reference).
MAX_PAGE_INSIGHTS_RANGE = dt.timedelta(days=90)

_POST_FIELDS = frozenset(
    {
        "id",
        "created_time",
        "updated_time",
        "message",
        "permalink_url",
        "status_type",
        "attachments",
        "shares",
        "comments",
        "reactions",
        "insights",
    }
)
_ATTACHMENT_FIELDS = (
    "description",
    "media_type",
    "subattachments",
    "target",
    "title",
    "type",
    "url",
)
_PAGE_FIELDS = frozenset({"id", "name", "followers_count", "fan_count", "link"})
_VIDEO_FIELDS = frozenset(
    {"id", "description", "created_time", "updated_time", "permalink_url", "length", "title"}
)


# --- errors ------------------------------------------------------------------------------------


def permission_denied(instagram_account: bool) -> GraphError:
    if instagram_account:
        return GraphError(
            "(#10) Application does not have permission for this action", code=10, status=403
        )
    return GraphError(
        "(#200) Requires pages_read_engagement permission to manage the object",
        code=200,
        status=403,
    )


# --- field selection ---------------------------------------------------------------------------


def _requested_metrics(spec: FieldSpec) -> list[str]:
    raw = spec.modifiers.get("metric")
    if raw is None:
        return list(VALID_POST_METRICS)
    return metric_names(raw)


def validate_post_fields(specs: Sequence[FieldSpec], state: SandboxState) -> None:
    """Reject unknown fields and invalid metrics before anything is rendered."""
    invalid = DEPRECATED_POST_METRICS | state.faults.invalid_for("post")
    for spec in specs:
        if spec.name not in _POST_FIELDS:
            raise nonexisting_field(spec.name, "Post")
        if spec.name == "attachments" and spec.children is not None:
            _validate_attachment_fields(spec.children)
        if spec.name == "insights":
            for metric in _requested_metrics(spec):
                if metric in invalid or metric not in VALID_POST_METRICS:
                    raise invalid_metric()


def _validate_attachment_fields(specs: Sequence[FieldSpec]) -> None:
    for spec in specs:
        if spec.name not in _ATTACHMENT_FIELDS:
            raise nonexisting_field(spec.name, "StoryAttachment")
        if spec.name == "subattachments" and spec.children is not None:
            _validate_attachment_fields(spec.children)


# --- rendering ---------------------------------------------------------------------------------


def render_post(
    post: data.SyntheticPost, specs: Sequence[FieldSpec], state: SandboxState, now: dt.datetime
) -> dict[str, Any]:
    """The post with the requested fields (already validated), plus `id` as Graph adds it."""
    metrics = data.metrics_for(post, now.date(), state.config)
    out: dict[str, Any] = {}
    for spec in specs:
        name = spec.name
        if name == "id":
            out["id"] = post.id
        elif name in ("created_time", "updated_time"):
            out[name] = graph_time(post.created_time)
        elif name == "message":
            if post.message is not None:
                out["message"] = post.message
        elif name == "permalink_url":
            out["permalink_url"] = post.permalink_url
        elif name == "status_type":
            out["status_type"] = post.status_type
        elif name == "attachments":
            if post.attachment is not None:
                out["attachments"] = {"data": [_render_attachment(post.attachment, spec.children)]}
        elif name == "shares":
            if metrics.shares:  # Graph leaves `shares` out when nobody shared the post
                out["shares"] = {"count": metrics.shares}
        elif name == "comments":
            out["comments"] = _edge_summary(
                spec, {"order": "chronological", "total_count": metrics.comments}, True
            )
        elif name == "reactions":
            out["reactions"] = _edge_summary(
                spec, {"total_count": metrics.reactions_total, "viewer_reaction": "NONE"}, None
            )
        elif name == "insights":
            out["insights"] = _render_insights(post, _requested_metrics(spec), metrics, now)
    out.setdefault("id", post.id)  # Graph returns a node's id even when not asked for
    return out


def _edge_summary(
    spec: FieldSpec, summary: dict[str, Any], can_comment: bool | None
) -> dict[str, Any]:
    edge: dict[str, Any] = {"data": []}
    if spec.modifiers.get("summary", "false").lower() not in ("false", "0", ""):
        if can_comment is not None:
            summary = {**summary, "can_comment": can_comment}
        edge["summary"] = summary
    return edge


def _render_attachment(
    attachment: data.Attachment, specs: Sequence[FieldSpec] | None
) -> dict[str, Any]:
    wanted = [(spec.name, spec.children) for spec in specs] if specs is not None else None
    if wanted is None:
        wanted = [(name, None) for name in _ATTACHMENT_FIELDS]
    out: dict[str, Any] = {}
    for name, children in wanted:
        if name == "subattachments":
            if attachment.subattachments:
                items = [_render_attachment(child, children) for child in attachment.subattachments]
                out["subattachments"] = {"data": items}
        elif name == "target":
            if attachment.target_id is not None:
                out["target"] = {"id": attachment.target_id, "url": attachment.url}
        else:
            value = getattr(attachment, name)
            if value is not None:
                out[name] = value
    return out


def _render_insights(
    post: data.SyntheticPost, names: Sequence[str], metrics: data.PostMetrics, now: dt.datetime
) -> dict[str, Any]:
    if not data.insights_available(post, now):
        return {"data": []}  # not computed yet: no entries rather than zeros
    values: dict[str, Any] = {
        "post_media_view": metrics.media_view,
        "post_total_media_view_unique": metrics.media_view_unique,
        "post_reactions_by_type_total": dict(metrics.reactions),
        "post_clicks": metrics.clicks,
        "post_video_views": metrics.video_views,
        "post_reactions_like_total": metrics.likes,
    }
    entries = []
    for name in names:
        if values[name] is None:
            continue  # e.g. post_video_views of a photo: Graph returns no entry for it
        title, description = VALID_POST_METRICS[name]
        entries.append(
            {
                "name": name,
                "period": "lifetime",
                "values": [{"value": values[name]}],
                "title": title,
                "description": description,
                "id": f"{post.id}/insights/{name}/lifetime",
            }
        )
    return {"data": entries}


def render_page(
    page_id: str, specs: Sequence[FieldSpec], state: SandboxState, now: dt.datetime
) -> dict[str, Any]:
    followers = data.page_followers(page_id, now.date(), state.config)
    values: dict[str, Any] = {
        "id": page_id,
        "name": data.page_name(page_id),
        "followers_count": followers,
        "fan_count": followers - followers // 20,
        "link": f"https://www.facebook.com/{page_id}",
    }
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in _PAGE_FIELDS:
            raise nonexisting_field(spec.name, "Page")
        out[spec.name] = values[spec.name]
    out.setdefault("id", page_id)
    return out


def render_video(
    post: data.SyntheticPost, specs: Sequence[FieldSpec], now: dt.datetime
) -> dict[str, Any]:
    """A video or reel as a Video node (what `/video_reels` lists)."""
    assert post.video_id is not None
    values: dict[str, Any] = {
        "id": post.video_id,
        "description": post.message,
        "created_time": graph_time(post.created_time),
        "updated_time": graph_time(post.created_time),
        "permalink_url": f"/reel/{post.video_id}/"
        if post.format is data.PostFormat.REEL
        else f"/{post.page_id}/videos/{post.video_id}/",
        "length": 5 + hash_int("video-length", post.id) % 85,
        "title": None,
    }
    out: dict[str, Any] = {}
    for spec in specs:
        if spec.name not in _VIDEO_FIELDS:
            raise nonexisting_field(spec.name, "Video")
        if values[spec.name] is not None:
            out[spec.name] = values[spec.name]
    out.setdefault("id", post.video_id)
    return out


def _breakdown(counts: dict[str, int]) -> dict[str, int]:
    """Graph's breakdown values list non-zero keys only."""
    return {key: value for key, value in counts.items() if value}


def render_video_insights(
    post: data.SyntheticPost, op: Operation, state: SandboxState, now: dt.datetime
) -> dict[str, Any]:
    raw = op.param("metric")
    names = metric_names(raw) if raw else list(VALID_REEL_METRICS)
    invalid = state.faults.invalid_for("reel")
    for name in names:
        if name in invalid or name not in VALID_REEL_METRICS:
            raise invalid_metric()
    if not data.insights_available(post, now):
        return {"data": []}
    metrics = data.metrics_for(post, now.date(), state.config)
    avg_ms = 2_000 + hash_int("reel-watch", post.id) % 15_000
    values: dict[str, Any] = {
        "blue_reels_play_count": metrics.media_view,
        "fb_reels_total_plays": metrics.media_view + metrics.media_view // 7,
        "fb_reels_replay_count": metrics.media_view // 7,
        "post_impressions_unique": metrics.media_view_unique,
        "post_video_avg_time_watched": avg_ms,
        "post_video_view_time": avg_ms * metrics.media_view,
        "post_video_likes_by_reaction_type": _breakdown(
            {f"REACTION_{kind.upper()}": count for kind, count in metrics.reactions.items()}
        ),
        "post_video_social_actions": _breakdown(
            {"COMMENT": metrics.comments, "SHARE": metrics.shares}
        ),
    }
    return {
        "data": [
            {
                "name": name,
                "period": "lifetime",
                "values": [{"value": values[name]}],
                "title": VALID_REEL_METRICS[name][0],
                "description": VALID_REEL_METRICS[name][1],
                "id": f"{post.video_id}/video_insights/{name}/lifetime",
            }
            for name in names
        ]
    }


def page_insights(op: Operation, state: SandboxState, ctx: CallContext) -> dict[str, Any]:
    page_id = op.segments[0]
    raw = op.param("metric")
    if not raw:
        raise GraphError(
            "(#100) No metric was specified to be fetched. Please specify one or more metrics "
            "to be fetched and try again.",
            code=100,
        )
    names = metric_names(raw)
    invalid = DEPRECATED_PAGE_METRICS | state.faults.invalid_for("page")
    for name in names:
        if name in invalid or name not in VALID_PAGE_METRICS:
            raise invalid_metric()
    if (op.param("period") or "day") != "day":
        raise invalid_parameter("The sandbox only serves period=day")
    now = ctx.now
    until = parse_time("until", op.param("until")) or now
    since = parse_time("since", op.param("since")) or until - dt.timedelta(days=2)
    if until <= since:
        raise invalid_parameter("Param until must be after since")
    if until - since > MAX_PAGE_INSIGHTS_RANGE:
        seconds = int(MAX_PAGE_INSIGHTS_RANGE.total_seconds())
        raise invalid_parameter(
            f"There cannot be more than {MAX_PAGE_INSIGHTS_RANGE.days} days ({seconds} s) "
            "between since and until"
        )
    floor = now.date() - dt.timedelta(days=state.config.history_days)
    days = []
    day = max(since.date() - dt.timedelta(days=1), floor)
    while day <= until.date():
        end = data.pacific_day_end(day)
        if since < end <= until and end <= now:
            days.append((day, end))
        day += dt.timedelta(days=1)
    entries = []
    for name in names:
        title, description = VALID_PAGE_METRICS[name]
        values = [
            {
                "value": getattr(data.page_day(page_id, day, state.config), _PAGE_DAY_FIELDS[name]),
                "end_time": graph_time(end),
            }
            for day, end in days
        ]
        entries.append(
            {
                "name": name,
                "period": "day",
                "values": values,
                "title": title,
                "description": f"Daily: {description}",
                "id": f"{page_id}/insights/{name}/day",
            }
        )
    return {"data": entries, "paging": insights_paging(op, ctx, since, until)}


# --- operations (shared by direct requests and batch items) ------------------------------------


def touched_accounts(op: Operation | None, state: SandboxState) -> tuple[str, ...]:
    """The accounts (Facebook pages, IG accounts) a read touches: what fault switches and the
    request log are keyed by."""
    if op is None or not op.segments:
        return ()
    object_id = op.segments[0]
    if object_id == DEBUG_TOKEN:
        return ()  # about a token, not an account
    if instagram.owns(object_id, state):
        return (instagram.account_of(object_id, state),)
    video = data.decode_video_id(object_id, state.config)
    if video is not None:
        return (video.page_id,)
    return (page_of(object_id),)


def execute(op: Operation, state: SandboxState, ctx: CallContext) -> Any:
    """Run one read; returns the JSON body or raises GraphError."""
    if not op.segments:
        raise unknown_path(())
    object_id, edges = op.segments[0], op.segments[1:]
    if object_id == DEBUG_TOKEN and not edges:
        token = op.param("input_token")
        limits = state.faults.token_limits(token) if token else {}
        return debug_token_body(token, limits, ctx.now)
    if instagram.owns(object_id, state):
        return instagram.execute(op, state, ctx)
    video = data.decode_video_id(object_id, state.config)
    if video is not None:
        return _video_read(video, op, state, ctx.now)
    if edges == ("posts",):
        return list_posts(op, state, ctx)
    if edges == ("video_reels",):
        return list_reels(op, state, ctx)
    if edges == ("insights",) and "_" not in object_id:
        if not data.page_exists(object_id, state.config):
            raise unknown_object(object_id)
        return page_insights(op, state, ctx)
    if not edges:
        return read_object(object_id, op.param("fields"), state, ctx.now)
    raise unknown_path(edges)


def _video_read(
    post: data.SyntheticPost, op: Operation, state: SandboxState, now: dt.datetime
) -> Any:
    if post.created_time > now or post.id in state.faults.deleted_posts:
        raise unknown_object(op.segments[0])
    edges = op.segments[1:]
    if not edges:
        return render_video(post, parse_fields(op.param("fields") or DEFAULT_VIDEO_FIELDS), now)
    if edges == ("video_insights",):
        return render_video_insights(post, op, state, now)
    raise unknown_path(edges)


def read_object(
    object_id: str, fields: str | None, state: SandboxState, now: dt.datetime
) -> dict[str, Any]:
    if "_" not in object_id:
        if not data.page_exists(object_id, state.config):
            raise unknown_object(object_id)
        return render_page(object_id, parse_fields(fields or DEFAULT_PAGE_FIELDS), state, now)
    post = data.decode_post_id(object_id, state.config)
    if post is None or post.created_time > now or object_id in state.faults.deleted_posts:
        raise unknown_object(object_id)
    specs = parse_fields(fields or DEFAULT_POST_FIELDS)
    validate_post_fields(specs, state)
    return render_post(post, specs, state, now)


def _page_listing(
    op: Operation, state: SandboxState, edge: str
) -> tuple[str, dt.datetime | None, dt.datetime | None, tuple[int, str] | None, int]:
    page_id = op.segments[0]
    if "_" in page_id:
        raise nonexisting_field(edge, "Post")
    if not data.page_exists(page_id, state.config):
        raise unknown_object(page_id)
    if op.param("before") is not None:
        raise invalid_parameter("The sandbox does not support 'before' paging")
    after = op.param("after")
    return (
        page_id,
        parse_time("since", op.param("since")),
        parse_time("until", op.param("until")),
        None if after is None else decode_cursor(after),
        parse_limit(op.param("limit")),
    )


def list_posts(op: Operation, state: SandboxState, ctx: CallContext) -> dict[str, Any]:
    page_id, since, until, before_key, limit = _page_listing(op, state, "posts")
    specs = parse_fields(op.param("fields") or DEFAULT_POST_FIELDS)
    validate_post_fields(specs, state)
    posts = data.iter_posts_desc(
        page_id, since=since, until=until, now=ctx.now, config=state.config, before_key=before_key
    )
    return _post_listing(
        op, ctx, posts, limit, lambda post: render_post(post, specs, state, ctx.now)
    )


def list_reels(op: Operation, state: SandboxState, ctx: CallContext) -> dict[str, Any]:
    page_id, since, until, before_key, limit = _page_listing(op, state, "video_reels")
    specs = parse_fields(op.param("fields") or DEFAULT_VIDEO_FIELDS)
    reels = data.reels_desc(
        page_id, since=since, until=until, now=ctx.now, config=state.config, before_key=before_key
    )
    return _post_listing(op, ctx, reels, limit, lambda post: render_video(post, specs, ctx.now))


def _post_listing(
    op: Operation,
    ctx: CallContext,
    candidates: Iterator[data.SyntheticPost],
    limit: int,
    render: Callable[[data.SyntheticPost], dict[str, Any]],
) -> dict[str, Any]:
    """One cursor page of `candidates` (newest first): `limit` items, `next` when more match."""
    found = list(islice(candidates, limit + 1))
    page = found[:limit]
    rendered = [render(post) for post in page]
    keys = [post.sort_key() for post in page]
    return listing_body(op, ctx, rendered, keys, limit, len(found) > limit)


# --- the request pipeline ----------------------------------------------------------------------


@dataclass
class Prepared:
    """A parsed request: the accounts it touches and how to produce its JSON body."""

    page_ids: tuple[str, ...]
    run: Callable[[CallContext], Any]
    batch_size: int | None = None
    version: str = ""


def _account_fault(prepared: Prepared, state: SandboxState) -> tuple[str, GraphError] | None:
    """The fault of a switch keyed by account that fails the whole request, if any."""
    faults = state.faults
    instagram_request = any(is_ig_user_id(a) for a in prepared.page_ids)
    if faults.any_in("permission_denied_accounts", prepared.page_ids):
        return "permission_denied", permission_denied(instagram_request)
    if faults.any_in("quota_exhausted_accounts", prepared.page_ids):
        return "quota_exhausted", _buc_throttle(instagram_request)
    return None


async def _graph_call(request: Request, prepared: Prepared) -> Response:
    form_names = (
        {name for name, _ in await _form_params(request)} if request.method == "POST" else set()
    )
    return await sandbox_call(
        request,
        partial(_graph_answer, request, prepared),
        page_ids=prepared.page_ids,
        batch_size=prepared.batch_size,
        token_params=("access_token", "input_token"),
        body_param_names=form_names,
    )


def _graph_answer(request: Request, prepared: Prepared, call: CallStart) -> Outcome:
    """Token, version and account checks, the fault switches, then the reply."""
    state, seq, now = call.state, call.seq, call.now
    token = bearer_token(request)
    fault: str | None = None
    error_code: int | None = None
    headers = {"facebook-api-version": prepared.version, "x-fb-trace-id": trace_id(seq)}
    usage_pct: int | None = None
    try:
        if token is None:
            raise missing_token()
        if state.faults.any_in("sunset_api_versions", [prepared.version]):
            fault = "sunset_api_version"
            raise version_expired(LATEST_VERSION)
        if state.faults.any_expired(prepared.page_ids):
            fault = "expired_token"
            raise expired_token(now)
        account_fault = _account_fault(prepared, state)
        if account_fault is not None:
            fault, error = account_fault
            if fault == "quota_exhausted":
                usage_pct = 100
            raise error
        kind = state.faults.take_transient(prepared.page_ids)
        if kind is not None:
            fault = f"transient:{kind.value}"
            response = transient_response(kind, prepared.page_ids, seq, state, headers)
            error_code = _transient_code(kind, prepared.page_ids)
        else:
            base_url = str(request.base_url).rstrip("/")
            body = prepared.run(CallContext(token, base_url, seq, now))
            headers.update(usage_headers(prepared.page_ids, state))
            response = Response(graph_dumps(body), 200, headers, media_type=_JSON_TYPE)
    except GraphError as err:
        error_code = err.code
        headers.update(usage_headers(prepared.page_ids, state, pct=usage_pct))
        if fault == "quota_exhausted":
            headers["X-Business-Use-Case-Usage"] = _buc_usage(
                prepared.page_ids, 100, regain_minutes=QUOTA_REGAIN_MINUTES
            )
        body = err.envelope(trace_id(seq))
        response = Response(graph_dumps(body), err.status, headers, media_type=_JSON_TYPE)
    return Outcome(response, error_code, fault)


_TRANSIENT_CODES: dict[TransientKind, int | None] = {
    TransientKind.PAGE_LIMIT: 32,
    TransientKind.BUC_LIMIT: 80001,
    TransientKind.SERVER_ERROR: 2,
    TransientKind.UNAVAILABLE: None,
}


def _instagram(page_ids: Sequence[str]) -> bool:
    return any(is_ig_user_id(account) for account in page_ids)


def _transient_code(kind: TransientKind, page_ids: Sequence[str]) -> int | None:
    ig = _instagram(page_ids)
    return {
        TransientKind.PAGE_LIMIT: 4 if ig else 32,
        TransientKind.BUC_LIMIT: 80002 if ig else 80001,
        TransientKind.SERVER_ERROR: 2,
        TransientKind.UNAVAILABLE: None,
    }[kind]


def _buc_throttle(instagram_account: bool) -> GraphError:
    if instagram_account:
        return GraphError(
            "(#80002) There have been too many calls to this Instagram account. Wait a bit and "
            "try again. For more info, please refer to "
            "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
            code=80002,
            is_transient=True,
        )
    return GraphError(
        "(#80001) There have been too many calls to this Page account. Wait a bit and try "
        "again. For more info, please refer to "
        "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
        code=80001,
        is_transient=True,
    )


def transient_response(
    kind: TransientKind,
    page_ids: Sequence[str],
    seq: int,
    state: SandboxState,
    base_headers: dict[str, str],
) -> Response:
    if kind is TransientKind.UNAVAILABLE:  # a proxy answers: no Graph headers, no JSON
        html = "<html><head><title>503 Service Unavailable</title></head><body>Sorry, "
        html += "something went wrong. We're working on it.</body></html>"
        return Response(html, 503, media_type="text/html; charset=utf-8")
    headers = {**base_headers, **usage_headers(page_ids, state)}
    ig = _instagram(page_ids)
    if kind is TransientKind.PAGE_LIMIT:
        headers.update(usage_headers(page_ids, state, pct=100))
        if ig:  # Instagram has no page-level limit: the app-level one answers
            err = GraphError("(#4) Application request limit reached", code=4, is_transient=True)
        else:
            err = GraphError("(#32) Page request limit reached", code=32, is_transient=True)
    elif kind is TransientKind.BUC_LIMIT:
        headers["X-Business-Use-Case-Usage"] = _buc_usage(page_ids, 100)
        err = _buc_throttle(ig)
    else:
        err = GraphError(
            "An unexpected error has occurred. Please retry your request later.",
            code=2,
            status=500,
            is_transient=True,
        )
    body = graph_dumps(err.envelope(trace_id(seq)))
    return Response(body, err.status, headers, media_type=_JSON_TYPE)


def usage_headers(
    page_ids: Sequence[str], state: SandboxState, pct: int | None = None
) -> dict[str, str]:
    """Graph's rate-limit headers: the configured percentage, or a realistic low value.
    X-Page-Usage only when a Facebook page is touched (Instagram has none)."""
    if pct is None:
        pct = state.faults.rate_limit_usage_pct
    if pct is None:
        pct = min(1 + state.log.count() // 25, 15)
    usage = graph_dumps({"call_count": pct, "total_cputime": pct, "total_time": pct})
    headers = {"X-App-Usage": usage}
    if not page_ids or any(not is_ig_user_id(account) for account in page_ids):
        headers["X-Page-Usage"] = usage
    headers["X-Business-Use-Case-Usage"] = _buc_usage(page_ids, pct)
    return headers


def _buc_usage(page_ids: Sequence[str], pct: int, regain_minutes: int = 0) -> str:
    def entry(account: str) -> dict[str, Any]:
        return {
            "type": "instagram" if is_ig_user_id(account) else "pages",
            "call_count": pct,
            "total_cputime": pct,
            "total_time": pct,
            "estimated_time_to_regain_access": regain_minutes,
        }

    return graph_dumps({account: [entry(account)] for account in dict.fromkeys(page_ids)})


async def _form_params(request: Request) -> list[tuple[str, str]]:
    """Parameters of a POST body: url-encoded form (what Graph clients send) or JSON."""
    body = (await request.body()).decode("utf-8", errors="replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            decoded = json.loads(body or "{}")
        except ValueError:
            return []
        if not isinstance(decoded, dict):
            return []
        return [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in decoded.items()]
    return parse_qsl(body, keep_blank_values=True)


# --- endpoints ---------------------------------------------------------------------------------


async def edge_endpoint(request: Request) -> Response:
    op = _operation_of(request, (request.path_params["object_id"], request.path_params["edge"]))
    return await _graph_call(request, _prepare_read(request, op))


async def object_endpoint(request: Request) -> Response:
    op = _operation_of(request, (request.path_params["object_id"],))
    return await _graph_call(request, _prepare_read(request, op))


async def batch_endpoint(request: Request) -> Response:
    version = request.path_params["version"]
    params = [*request.query_params.multi_items(), *(await _form_params(request))]
    return await _graph_call(request, prepare_batch(request, version, params))


def _operation_of(request: Request, segments: tuple[str, ...]) -> Operation:
    return Operation(
        version=request.path_params["version"],
        segments=segments,
        params=tuple(request.query_params.multi_items()),
    )


def _prepare_read(request: Request, op: Operation) -> Prepared:
    state = get_state(request.app)

    def run(ctx: CallContext) -> Any:
        return execute(op, state, ctx)

    return Prepared(touched_accounts(op, state), run, version=op.version)


@dataclass(frozen=True)
class BatchItem:
    method: str
    op: Operation | None  # None: relative_url could not be parsed


def prepare_batch(request: Request, version: str, params: list[tuple[str, str]]) -> Prepared:
    state = get_state(request.app)
    values = dict(params)
    include_headers = values.get("include_headers", "true").lower() != "false"
    try:
        items = _parse_batch(values.get("batch"), version)
    except GraphError as err:
        failure = err

        def fail(ctx: CallContext) -> Any:
            raise failure

        return Prepared((), fail, version=version)
    pages = tuple(dict.fromkeys(p for item in items for p in touched_accounts(item.op, state)))

    def run(ctx: CallContext) -> Any:
        if len(items) > MAX_BATCH_ITEMS:
            raise too_many_batch_items()
        return [
            None
            if state.faults.take_null_item()
            else _run_item(item, index, state, ctx, include_headers)
            for index, item in enumerate(items)
        ]

    return Prepared(pages, run, batch_size=len(items), version=version)


def _parse_batch(raw: str | None, version: str) -> list[BatchItem]:
    if raw is None:
        raise invalid_parameter("The parameter batch is required")
    try:
        decoded = json.loads(raw)
    except ValueError as err:
        raise invalid_parameter("The parameter batch must be a JSON array") from err
    if not isinstance(decoded, list):
        raise invalid_parameter("The parameter batch must be a JSON array")
    items = []
    for entry in decoded:
        if not isinstance(entry, dict) or not isinstance(entry.get("relative_url"), str):
            raise invalid_parameter("Each batch item must have a relative_url")
        method = str(entry.get("method", "GET")).upper()
        items.append(BatchItem(method, _relative_operation(entry["relative_url"], version)))
    return items


def _relative_operation(relative_url: str, version: str) -> Operation | None:
    parts = urlsplit(relative_url)
    segments = [segment for segment in parts.path.split("/") if segment]
    if segments and _VERSION_RE.fullmatch(segments[0]):
        version = segments.pop(0)
    if not segments:
        return None
    params = tuple(parse_qsl(parts.query, keep_blank_values=True))
    return Operation(version=version, segments=tuple(segments), params=params)


def _run_item(
    item: BatchItem,
    index: int,
    state: SandboxState,
    ctx: CallContext,
    include_headers: bool,
) -> dict[str, Any]:
    try:
        if item.method != "GET":
            raise invalid_parameter(f"Unsupported method {item.method} in the sandbox")
        if item.op is None:
            raise unknown_path(())
        status, body = 200, execute(item.op, state, ctx)
    except GraphError as err:
        status, body = err.status, err.envelope(trace_id(ctx.seq, index))
    reply: dict[str, Any] = {"code": status}
    if include_headers:
        reply["headers"] = list(_item_headers(item))
    reply["body"] = graph_dumps(body)
    return reply


def _item_headers(item: BatchItem) -> Iterator[dict[str, str]]:
    yield {"name": "Content-Type", "value": "text/javascript; charset=UTF-8"}
    yield {"name": "Cache-Control", "value": "private, no-cache, no-store, must-revalidate"}
    if item.op is not None:
        yield {"name": "facebook-api-version", "value": item.op.version}


# --- routes ------------------------------------------------------------------------------------


class GraphVersionConvertor(Convertor[str]):
    """Matches a `vNN.0` path segment only, so other platforms' prefixes never reach Graph."""

    regex = _VERSION_RE.pattern

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("graph_version", GraphVersionConvertor())


def routes() -> list[BaseRoute]:
    """Every Graph route: Facebook and Instagram objects share the host and the paths."""
    return [
        Route("/{version:graph_version}/{object_id}/{edge}", edge_endpoint, methods=["GET"]),
        Route("/{version:graph_version}/{object_id}", object_endpoint, methods=["GET"]),
        Route("/{version:graph_version}/", batch_endpoint, methods=["POST"]),
        Route("/{version:graph_version}", batch_endpoint, methods=["POST"]),
    ]
