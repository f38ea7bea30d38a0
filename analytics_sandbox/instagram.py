"""Instagram objects on the sandbox's Graph host (Instagram API with Facebook Login).

Served through the same routes, request pipeline and fault switches as Facebook
(`sandbox.facebook` dispatches every read whose object is an IG account or IG media here):

- `GET /{version}/{ig-user-id}` (id, username, name, followers_count, follows_count, media_count)
- `GET /{version}/{ig-user-id}/media` (fields, limit, after): feed media and reels, newest
  first, cursor paged. `since`/`until` are accepted and ignored (the edge does not filter by
  time in practice), so clients page down to the day they want.
- `GET /{version}/{ig-user-id}/stories`: live stories only (the last 24 h).
- `GET /{version}/{ig-user-id}/insights?metric=..&period=day&since=&until=[&metric_type=
  total_value]`: reach and follower_count as a daily time series (`end_time` at the next
  US-Pacific midnight; follower_count only within the last 30 days, else error 100);
  profile_views, website_clicks, views, accounts_engaged, total_interactions only with
  `metric_type=total_value`; impressions is deprecated ("... the impressions metric is no
  longer supported for the queried user"), an unknown name fails with "metric[i] must be one
  of the following values: ...".
- `GET /{version}/{media-id}` and `GET /{version}/{media-id}/insights?metric=..`: one metric
  set per media product type (FEED, REELS, STORY); a deprecated (impressions, plays,
  video_views, ...), unknown or unsupported metric fails the whole call with "(#100) The Media
  Insights API does not support the <m> metric for this media product type."; so does a
  metric the `invalid_metrics_for` fault switch names for the media's kind
  (`<media_type>/<media_product_type>`): {"VIDEO/FEED": ["views"]} is a legacy feed video
  refusing views while the images, albums and reels of the same page answer it. An empty
  `data` list until insights are computed (15 min for a story, 1 h otherwise) and for an
  expired story; "(#10) Not enough viewers" for a story seen by fewer than 5 accounts; carousel
  children have no insights. A media in `deleted_posts` still lists but reading it fails with
  100/33.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from itertools import islice
from typing import Any

from analytics_sandbox import instagram_data as igd
from analytics_sandbox.data import is_ig_user_id
from analytics_sandbox.graph import (
    CallContext,
    FieldSpec,
    GraphError,
    Operation,
    decode_cursor,
    graph_time,
    insights_paging,
    invalid_parameter,
    listing_body,
    metric_names,
    nonexisting_field,
    parse_fields,
    parse_limit,
    parse_time,
    unknown_object,
    unknown_path,
)
from analytics_sandbox.state import SandboxState

DEFAULT_MEDIA_FIELDS = "id"
DEFAULT_USER_FIELDS = "id"
_MEDIA_NODE = "IGMedia"
_USER_NODE = "IGUser"

_MEDIA_FIELDS = frozenset(
    {
        "id",
        "caption",
        "media_type",
        "media_product_type",
        "permalink",
        "timestamp",
        "children",
        "like_count",
        "comments_count",
        "shortcode",
        "username",
        "owner",
        "is_comment_enabled",
    }
)
_USER_FIELDS = frozenset(
    {"id", "ig_id", "username", "name", "followers_count", "follows_count", "media_count"}
)

_TITLES: dict[str, str] = {
    "views": "Views",
    "reach": "Accounts reached",
    "likes": "Likes",
    "comments": "Comments",
    "shares": "Shares",
    "saved": "Saved",
    "total_interactions": "Interactions",
    "replies": "Replies",
    "navigation": "Navigation",
    "follows": "Follows",
    "profile_visits": "Profile visits",
    "ig_reels_avg_watch_time": "Average watch time",
    "ig_reels_video_view_total_time": "Watch time",
}
_FEED = frozenset(
    {
        "views",
        "reach",
        "likes",
        "comments",
        "shares",
        "saved",
        "total_interactions",
        "follows",
        "profile_visits",
    }
)
MEDIA_METRICS: dict[str, frozenset[str]] = {
    "FEED": _FEED,
    "REELS": (_FEED - {"follows", "profile_visits"})
    | {"ig_reels_avg_watch_time", "ig_reels_video_view_total_time"},
    "STORY": frozenset(
        {
            "views",
            "reach",
            "replies",
            "shares",
            "navigation",
            "follows",
            "profile_visits",
            "total_interactions",
        }
    ),
}
DEPRECATED_MEDIA_METRICS = frozenset(
    {
        "impressions",
        "plays",
        "video_views",
        "clips_replays_count",
        "ig_reels_aggregated_all_plays_count",
        "engagement",
    }
)

# Account metric -> the metric types it supports.
ACCOUNT_METRICS: dict[str, tuple[str, ...]] = {
    "reach": ("time_series", "total_value"),
    "follower_count": ("time_series",),
    "profile_views": ("total_value",),
    "website_clicks": ("total_value",),
    "views": ("total_value",),
    "accounts_engaged": ("total_value",),
    "total_interactions": ("total_value",),
}
DEPRECATED_ACCOUNT_METRICS = frozenset({"impressions", "email_contacts", "phone_call_clicks"})
MAX_USER_INSIGHTS_RANGE = dt.timedelta(days=30)  # between since and until
_FOLLOWER_COUNT_DAYS = 30


# --- routing -----------------------------------------------------------------------------------


def owns(object_id: str, state: SandboxState) -> bool:
    """True when `object_id` is an Instagram account or media id (served here)."""
    if is_ig_user_id(object_id):
        return True
    return igd.decode_media_id(object_id, state.config) is not None


def account_of(object_id: str, state: SandboxState) -> str:
    """The IG account an IG object belongs to (the account itself for an account id)."""
    if is_ig_user_id(object_id):
        return object_id
    media = igd.decode_media_id(object_id, state.config)
    return media.user_id if media is not None else object_id


def execute(op: Operation, state: SandboxState, ctx: CallContext) -> Any:
    object_id = op.segments[0]
    edges = op.segments[1:]
    if is_ig_user_id(object_id):
        if not igd.account_exists(object_id, state.config):
            raise unknown_object(object_id)
        if not edges:
            return render_user(object_id, op.param("fields"), state, ctx.now)
        if edges == ("media",):
            return list_media(op, state, ctx, stories=False)
        if edges == ("stories",):
            return list_media(op, state, ctx, stories=True)
        if edges == ("insights",):
            return account_insights(op, state, ctx)
        raise unknown_path(edges)
    media = _readable_media(object_id, state, ctx.now)
    if not edges:
        specs = parse_fields(op.param("fields") or DEFAULT_MEDIA_FIELDS)
        return render_media(media, specs, state, ctx.now)
    if edges == ("insights",):
        return media_insights(media, op, state, ctx.now)
    raise unknown_path(edges)


def _readable_media(object_id: str, state: SandboxState, now: dt.datetime) -> igd.IgMedia:
    media = igd.decode_media_id(object_id, state.config)
    if media is None or media.timestamp > now or object_id in state.faults.deleted_posts:
        raise unknown_object(object_id)
    return media


# --- objects -----------------------------------------------------------------------------------


def render_user(
    user_id: str, fields: str | None, state: SandboxState, now: dt.datetime
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": user_id,
        "ig_id": int(user_id[-10:]),
        "username": igd.username(user_id),
        "name": f"Sandbox IG {user_id[-6:]}",
        "followers_count": igd.followers(user_id, now.date(), state.config),
        "follows_count": 100 + int(user_id[-3:]),
        "media_count": 40 + int(user_id[-2:]),
    }
    out: dict[str, Any] = {}
    for spec in parse_fields(fields or DEFAULT_USER_FIELDS):
        if spec.name not in _USER_FIELDS:
            raise nonexisting_field(spec.name, _USER_NODE)
        out[spec.name] = values[spec.name]
    out.setdefault("id", user_id)
    return out


def render_media(
    media: igd.IgMedia, specs: Sequence[FieldSpec], state: SandboxState, now: dt.datetime
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in specs:
        name = spec.name
        if name not in _MEDIA_FIELDS:
            raise nonexisting_field(name, _MEDIA_NODE)
        if name == "caption":
            if media.caption is not None:  # Graph omits it for media without text
                out["caption"] = media.caption
        elif name == "children":
            if media.shape is igd.Shape.CAROUSEL:
                children = [
                    render_media(child, spec.children or (), state, now)
                    for child in media.children()
                ]
                out["children"] = {"data": children}
        elif name in ("like_count", "comments_count"):
            if media.kind is igd.Kind.MEDIA:  # stories and album children have no counts
                values = igd.media_insights(media, now, state.config)
                out[name] = values["likes" if name == "like_count" else "comments"]
        elif name == "owner":
            out["owner"] = {"id": media.user_id}
        else:
            out[name] = {
                "id": media.id,
                "media_type": media.media_type,
                "media_product_type": media.product_type,
                "permalink": media.permalink,
                "timestamp": graph_time(media.timestamp),
                "shortcode": media.shortcode,
                "username": igd.username(media.user_id),
                "is_comment_enabled": media.kind is not igd.Kind.STORY,
            }[name]
    out.setdefault("id", media.id)
    return out


def list_media(
    op: Operation, state: SandboxState, ctx: CallContext, *, stories: bool
) -> dict[str, Any]:
    user_id = op.segments[0]
    specs = parse_fields(op.param("fields") or DEFAULT_MEDIA_FIELDS)
    for spec in specs:
        if spec.name not in _MEDIA_FIELDS:
            raise nonexisting_field(spec.name, _MEDIA_NODE)
    limit = parse_limit(op.param("limit"))
    if op.param("before") is not None:
        raise invalid_parameter("The sandbox does not support 'before' paging")
    after = op.param("after")
    before_key = None if after is None else decode_cursor(after)
    source = (
        igd.live_stories_desc(user_id, now=ctx.now, config=state.config, before_key=before_key)
        if stories
        else igd.media_desc(user_id, now=ctx.now, config=state.config, before_key=before_key)
    )
    found = list(islice(source, limit + 1))
    page = found[:limit]
    rendered = [render_media(media, specs, state, ctx.now) for media in page]
    keys = [media.sort_key() for media in page]
    return listing_body(op, ctx, rendered, keys, limit, len(found) > limit)


# --- insights ----------------------------------------------------------------------------------


def _product_metrics_error(metric: str) -> GraphError:
    return GraphError(
        f"(#100) The Media Insights API does not support the {metric} metric for this media "
        "product type.",
        code=100,
    )


def _no_longer_supported(metric: str) -> GraphError:
    return GraphError(
        f"Starting from version 22 and above, the {metric} metric is no longer supported for the "
        "queried user. Please refer to the documentation at "
        "https://developers.facebook.com/docs/instagram-api/reference/ig-user/insights for a "
        "list of supported metrics.",
        code=100,
    )


def media_insights(
    media: igd.IgMedia, op: Operation, state: SandboxState, now: dt.datetime
) -> dict[str, Any]:
    if media.kind is igd.Kind.CHILD:
        raise GraphError(
            "(#100) Insights are not available for media that is part of a carousel album.",
            code=100,
        )
    raw = op.param("metric")
    if not raw:
        raise invalid_parameter("The parameter metric is required")
    names = metric_names(raw)
    supported = MEDIA_METRICS[media.product_type]
    kind = f"{media.media_type}/{media.product_type}"
    invalid = DEPRECATED_MEDIA_METRICS | state.faults.invalid_for(kind)
    for name in names:
        if name in invalid or name not in supported:
            raise _product_metrics_error(name)
    expired = media.kind is igd.Kind.STORY and now >= media.timestamp + igd.STORY_LIFETIME
    if not igd.insights_ready(media, now) or expired:
        return {"data": []}
    if igd.too_few_viewers(media, state.config):
        raise GraphError("(#10) Not enough viewers for the media to show insights", code=10)
    values = igd.media_insights(media, now, state.config)
    return {
        "data": [
            {
                "name": name,
                "period": "lifetime",
                "values": [{"value": values[name]}],
                "title": _TITLES.get(name, name),
                "description": f"Lifetime {_TITLES.get(name, name).lower()} of this media.",
                "id": f"{media.id}/insights/{name}/lifetime",
            }
            for name in names
        ]
    }


def _account_window(op: Operation, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    since = parse_time("since", op.param("since"))
    until = parse_time("until", op.param("until"))
    if until is None:
        until = now
    if since is None:
        since = until - dt.timedelta(days=2)
    if until <= since:
        raise invalid_parameter("Param until must be after since")
    if until - since > MAX_USER_INSIGHTS_RANGE:
        raise invalid_parameter(
            "There cannot be more than 30 days (2592000 s) between since and until"
        )
    return since, until


def account_insights(op: Operation, state: SandboxState, ctx: CallContext) -> dict[str, Any]:
    user_id = op.segments[0]
    raw = op.param("metric")
    if not raw:
        raise invalid_parameter("The parameter metric is required")
    names = metric_names(raw)
    for index, name in enumerate(names):
        if name in DEPRECATED_ACCOUNT_METRICS:
            raise _no_longer_supported(name)
        if name in state.faults.invalid_metrics or name not in ACCOUNT_METRICS:
            raise GraphError(
                f"(#100) metric[{index}] must be one of the following values: "
                + ", ".join(ACCOUNT_METRICS),
                code=100,
            )
    if (op.param("period") or "day") != "day":
        raise invalid_parameter("The sandbox only serves period=day")
    metric_type = op.param("metric_type") or "time_series"
    if metric_type not in ("time_series", "total_value"):
        raise invalid_parameter("metric_type must be one of: time_series, total_value")
    wrong = [n for n in names if metric_type not in ACCOUNT_METRICS[n]]
    if wrong and metric_type == "time_series":
        raise invalid_parameter(
            f"The following metrics ({', '.join(wrong)}) should be specified with parameter "
            "metric_type=total_value"
        )
    if wrong:
        raise invalid_parameter(
            f"The following metrics ({', '.join(wrong)}) do not support metric_type=total_value"
        )
    since, until = _account_window(op, ctx.now)
    oldest = ctx.now.date() - dt.timedelta(days=_FOLLOWER_COUNT_DAYS)
    if "follower_count" in names and since.date() < oldest:
        raise invalid_parameter(
            "follower_count metric only supports querying data for the last 30 days, "
            "excluding the current day"
        )
    data = [
        _account_entry(user_id, name, metric_type, since, until, state, ctx.now) for name in names
    ]
    body: dict[str, Any] = {"data": data}
    if metric_type == "time_series":
        body["paging"] = insights_paging(op, ctx, since, until)
    return body


def _account_entry(
    user_id: str,
    name: str,
    metric_type: str,
    since: dt.datetime,
    until: dt.datetime,
    state: SandboxState,
    now: dt.datetime,
) -> dict[str, Any]:
    title = {"follower_count": "Follower count", "profile_views": "Profile views"}.get(
        name, name.replace("_", " ").capitalize()
    )
    entry: dict[str, Any] = {"name": name, "period": "day", "title": title}
    entry["description"] = f"Daily {title.lower()} of this profile."
    if metric_type == "total_value":
        days = _utc_days(since, until)
        total = sum(
            getattr(igd.account_day(user_id, day, state.config), name)
            for day in days
            if igd.day_end(day) <= now
        )
        entry["total_value"] = {"value": total}
    else:
        values = []
        day = since.date() - dt.timedelta(days=1)
        while day <= until.date():
            end = igd.day_end(day)
            if since < end <= until and end <= now:
                value = getattr(igd.account_day(user_id, day, state.config), name)
                values.append({"value": value, "end_time": graph_time(end)})
            day += dt.timedelta(days=1)
        entry["values"] = values
    entry["id"] = f"{user_id}/insights/{name}/day"
    return entry


def _utc_days(since: dt.datetime, until: dt.datetime) -> list[dt.date]:
    """The calendar dates whose UTC midnight falls in [since, until)."""
    days = []
    day = since.date() if since.time() == dt.time() else since.date() + dt.timedelta(days=1)
    while dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) < until:
        days.append(day)
        day += dt.timedelta(days=1)
    return days
