"""Facebook Graph API routes of the sandbox, in Graph's wire format.

- `GET /{version}/{page_id}/posts` (fields, since, until, limit, after; cursor paging)
- `GET /{version}/{object_id}` (a post or a page)
- `POST /{version}/` with `batch=[...]` (at most 50 items; each item a JSON *string* body)

Every request goes through `_graph_call`: artificial latency, bearer-token check (the token is
read only from `Authorization: Bearer`), the expired-token and transient fault switches, usage
headers, then the request log. Deliberate choices, where Graph itself is not one thing:

- A deleted post (`deleted_posts`) stays listed by `/posts` (it was listed before it was
  deleted) but reading it, alone or as a batch item, fails with 100/33.
- An expired token or a transient failure fails the whole request, batch included (Graph
  checks the token and the rate limits before it runs any batch item).
- `comments` / `reactions` edges always come back with an empty `data` list: only their
  `summary` carries numbers.
- JSON is compact with `/` escaped as `\\/`, as Graph sends it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from analytics_pipeline.sandbox import data
from analytics_pipeline.sandbox.app import RequestRecord, SandboxState, get_state, redact_query
from analytics_pipeline.sandbox.faults import TransientKind

MAX_BATCH_ITEMS = 50
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
DEFAULT_POST_FIELDS = "created_time,message,id"
DEFAULT_PAGE_FIELDS = "name,id"

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


# --- errors and replies ------------------------------------------------------------------------


class GraphError(Exception):
    """A Graph error envelope plus the HTTP status it travels with."""

    def __init__(
        self,
        message: str,
        *,
        code: int,
        error_type: str = "OAuthException",
        subcode: int | None = None,
        status: int = 400,
        is_transient: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.error_type = error_type
        self.subcode = subcode
        self.status = status
        self.is_transient = is_transient

    def envelope(self, trace_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.error_type}
        if self.is_transient is not None:
            error["is_transient"] = self.is_transient
        error["code"] = self.code
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = trace_id
        return {"error": error}


def missing_token() -> GraphError:
    return GraphError(
        "An active access token must be used to query information about the current user.",
        code=190,
    )


def expired_token(now: dt.datetime) -> GraphError:
    expired_at = now - dt.timedelta(hours=5)
    return GraphError(
        f"Error validating access token: Session has expired on {_graph_clock(expired_at)}. "
        f"The current time is {_graph_clock(now)}.",
        code=190,
        subcode=463,
    )


def unknown_object(object_id: str) -> GraphError:
    return GraphError(
        f"Unsupported get request. Object with ID '{object_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read "
        "the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        code=100,
        subcode=33,
        error_type="GraphMethodException",
    )


def invalid_metric() -> GraphError:
    return GraphError("(#100) The value must be a valid insights metric", code=100)


def nonexisting_field(name: str, node_type: str) -> GraphError:
    return GraphError(
        f"(#100) Tried accessing nonexisting field ({name}) on node type ({node_type})", code=100
    )


def invalid_parameter(message: str) -> GraphError:
    return GraphError(f"(#100) {message}", code=100)


def too_many_batch_items() -> GraphError:
    return GraphError("(#1) Too many requests in batch message. Maximum batch size is 50", code=1)


def _graph_clock(moment: dt.datetime) -> str:
    """Graph writes token times in US Pacific time; a fixed PST offset is close enough here."""
    pacific = moment.astimezone(dt.timezone(dt.timedelta(hours=-8)))
    return pacific.strftime("%A, %d-%b-%y %H:%M:%S PST")


def graph_dumps(payload: Any) -> str:
    """Compact JSON with `/` escaped, byte-compatible with Graph's serializer style."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/")


def trace_id(seq: int, index: int = -1) -> str:
    digest = hashlib.sha256(f"fbtrace|{seq}|{index}".encode()).digest()
    return base64.b64encode(digest)[:11].decode().replace("+", "A").replace("/", "B")


# --- field selection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One entry of a `fields=` selection, e.g. `insights.metric(a,b)` or `attachments{url}`."""

    name: str
    modifiers: dict[str, str] = field(default_factory=dict)
    children: tuple[FieldSpec, ...] | None = None  # None: no `{...}` sub-selection


def parse_fields(text: str) -> tuple[FieldSpec, ...]:
    """Parse Graph's field syntax; raises GraphError (code 100) on malformed input."""
    parser = _FieldParser(text.replace(" ", ""))
    specs = parser.fields()
    if parser.pos != len(parser.text):
        raise invalid_parameter(f"Syntax error in fields at character {parser.pos}")
    return specs


class _FieldParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _name(self) -> str:
        match = re.compile(r"[A-Za-z0-9_]+").match(self.text, self.pos)
        if match is None:
            raise invalid_parameter(f"Syntax error in fields at character {self.pos}")
        self.pos = match.end()
        return match.group()

    def fields(self) -> tuple[FieldSpec, ...]:
        specs = [self._field()]
        while self._peek() == ",":
            self.pos += 1
            specs.append(self._field())
        return tuple(specs)

    def _field(self) -> FieldSpec:
        name = self._name()
        modifiers: dict[str, str] = {}
        children: tuple[FieldSpec, ...] | None = None
        while self._peek() in (".", "{"):
            if self._peek() == "{":
                self.pos += 1
                children = self.fields()
                self._expect("}")
            else:
                self.pos += 1
                key = self._name()
                self._expect("(")
                end = self.text.find(")", self.pos)
                if end < 0:
                    raise invalid_parameter("Syntax error in fields: missing )")
                modifiers[key] = self.text[self.pos : end]
                self.pos = end + 1
        return FieldSpec(name, modifiers, children)

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise invalid_parameter(f"Syntax error in fields: expected {char!r}")
        self.pos += 1


def _requested_metrics(spec: FieldSpec) -> list[str]:
    raw = spec.modifiers.get("metric")
    if raw is None:
        return list(VALID_POST_METRICS)
    return [name for name in raw.strip("[]").replace('"', "").split(",") if name]


def validate_post_fields(specs: Sequence[FieldSpec], state: SandboxState) -> None:
    """Reject unknown fields and invalid metrics before anything is rendered."""
    invalid = DEPRECATED_POST_METRICS | state.faults.invalid_metrics
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


def graph_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


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


# --- operations (shared by direct requests and batch items) ------------------------------------


@dataclass(frozen=True)
class Operation:
    """One Graph read, already located: what to read and which page it touches."""

    version: str
    segments: tuple[str, ...]  # path after the version, e.g. ("123", "posts")
    params: tuple[tuple[str, str], ...]  # query parameters in order

    @property
    def page_ids(self) -> tuple[str, ...]:
        return (page_of(self.segments[0]),) if self.segments else ()

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None


def page_of(object_id: str) -> str:
    """The page a Graph object id belongs to (`<page>_<n>` posts, or the page itself)."""
    return object_id.partition("_")[0]


def execute(op: Operation, state: SandboxState, ctx: CallContext) -> Any:
    """Run one read; returns the JSON body or raises GraphError."""
    if len(op.segments) == 2 and op.segments[1] == "posts":
        return list_posts(op, state, ctx)
    if len(op.segments) == 1:
        return read_object(op.segments[0], op.param("fields"), state, ctx.now)
    raise GraphError(f"Unknown path components: /{'/'.join(op.segments[1:])}", code=2500)


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


def list_posts(op: Operation, state: SandboxState, ctx: CallContext) -> dict[str, Any]:
    now = ctx.now
    page_id = op.segments[0]
    if "_" in page_id:
        raise nonexisting_field("posts", "Post")
    if not data.page_exists(page_id, state.config):
        raise unknown_object(page_id)
    specs = parse_fields(op.param("fields") or DEFAULT_POST_FIELDS)
    validate_post_fields(specs, state)
    limit = _parse_limit(op.param("limit"))
    if op.param("before") is not None:
        raise invalid_parameter("The sandbox does not support 'before' paging")
    after = op.param("after")
    found = list(
        islice(
            data.iter_posts_desc(
                page_id,
                since=_parse_time("since", op.param("since")),
                until=_parse_time("until", op.param("until")),
                now=now,
                config=state.config,
                before_key=None if after is None else decode_cursor(after),
            ),
            limit + 1,
        )
    )
    posts = found[:limit]
    body: dict[str, Any] = {"data": [render_post(post, specs, state, now) for post in posts]}
    if posts:
        paging: dict[str, Any] = {
            "cursors": {"before": encode_cursor(posts[0]), "after": encode_cursor(posts[-1])}
        }
        if len(found) > limit:
            paging["next"] = _next_url(op, ctx, limit, encode_cursor(posts[-1]))
        body["paging"] = paging
    return body


def _parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or int(raw) < 1:
        raise invalid_parameter("Param limit must be a positive integer")
    return min(int(raw), MAX_LIMIT)


def _parse_time(name: str, raw: str | None) -> dt.datetime | None:
    """Unix seconds (what our client sends) or an ISO date/datetime (Graph accepts both)."""
    if raw is None or raw == "":
        return None
    try:
        if raw.lstrip("-").isdigit():
            return dt.datetime.fromtimestamp(int(raw), dt.UTC)
        parsed = dt.datetime.fromisoformat(raw)
    except (ValueError, OverflowError, OSError) as err:
        raise invalid_parameter(f"Param {name} must be a unix timestamp or a date") from err
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def encode_cursor(post: data.SyntheticPost) -> str:
    ts, number = post.sort_key()
    raw = json.dumps({"t": ts, "n": number}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        return int(decoded["t"]), str(decoded["n"])
    except (binascii.Error, ValueError, KeyError, TypeError) as err:
        raise invalid_parameter("Invalid cursor") from err


def _next_url(op: Operation, ctx: CallContext, limit: int, cursor: str) -> str:
    """Graph's `paging.next`: every original parameter, the limit, the cursor and the token."""
    kept = [(k, v) for k, v in op.params if k not in ("access_token", "after", "limit")]
    query = [("access_token", ctx.token), *kept, ("limit", str(limit)), ("after", cursor)]
    path = "/".join((op.version, *op.segments))
    return f"{ctx.base_url}/{path}?{urlencode(query)}"


# --- the request pipeline ----------------------------------------------------------------------


@dataclass(frozen=True)
class CallContext:
    token: str
    base_url: str  # scheme://host:port of this server, for `paging.next`
    seq: int
    now: dt.datetime  # the sandbox clock, read once per request


@dataclass
class Prepared:
    """A parsed request: the pages it touches and how to produce its JSON body."""

    page_ids: tuple[str, ...]
    run: Callable[[CallContext], Any]
    batch_size: int | None = None
    version: str = ""


async def _graph_call(request: Request, prepared: Prepared) -> Response:
    state = get_state(request.app)
    latency_ms = state.faults.latency_ms
    if latency_ms:
        await _sleep_unless_closing(latency_ms / 1000, state)
    seq = state.log.next_seq()
    now = state.clock()
    token = bearer_token(request)
    fault: str | None = None
    error_code: int | None = None
    headers = {"facebook-api-version": prepared.version, "x-fb-trace-id": trace_id(seq)}
    try:
        if token is None:
            raise missing_token()
        if state.faults.any_expired(prepared.page_ids):
            fault = "expired_token"
            raise expired_token(now)
        kind = state.faults.take_transient(prepared.page_ids)
        if kind is not None:
            fault = f"transient:{kind.value}"
            response = transient_response(kind, prepared.page_ids, seq, state, headers)
            error_code = _TRANSIENT_CODES.get(kind)
        else:
            base_url = str(request.base_url).rstrip("/")
            body = prepared.run(CallContext(token, base_url, seq, now))
            headers.update(usage_headers(prepared.page_ids, state))
            response = Response(graph_dumps(body), 200, headers, media_type=_JSON_TYPE)
    except GraphError as err:
        error_code = err.code
        headers.update(usage_headers(prepared.page_ids, state))
        body = err.envelope(trace_id(seq))
        response = Response(graph_dumps(body), err.status, headers, media_type=_JSON_TYPE)
    form_keys = set(await _form_params(request)) if request.method == "POST" else set()
    state.log.append(
        RequestRecord(
            seq=seq,
            timestamp=now,
            method=request.method,
            path=request.url.path,
            query=redact_query(request.url.query),
            page_ids=prepared.page_ids,
            authorization_present="authorization" in request.headers,
            access_token_in_query="access_token" in request.query_params
            or "access_token" in form_keys,
            status=response.status_code,
            latency_ms=latency_ms,
            error_code=error_code,
            fault=fault,
            batch_size=prepared.batch_size,
        )
    )
    return response


async def _sleep_unless_closing(seconds: float, state: SandboxState) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not state.closing.is_set():
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return
        await asyncio.sleep(min(remaining, 0.05))


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; query parameters never count."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


_TRANSIENT_CODES: dict[TransientKind, int | None] = {
    TransientKind.PAGE_LIMIT: 32,
    TransientKind.BUC_LIMIT: 80001,
    TransientKind.SERVER_ERROR: 2,
    TransientKind.UNAVAILABLE: None,
}


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
    if kind is TransientKind.PAGE_LIMIT:
        headers.update(usage_headers(page_ids, state, pct=100))
        err = GraphError("(#32) Page request limit reached", code=32, is_transient=True)
    elif kind is TransientKind.BUC_LIMIT:
        headers["X-Business-Use-Case-Usage"] = _buc_usage(page_ids, 100)
        err = GraphError(
            "(#80001) There have been too many calls to this Page account. Wait a bit and try "
            "again. For more info, please refer to "
            "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
            code=80001,
            is_transient=True,
        )
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
    """Graph's rate-limit headers: the configured percentage, or a realistic low value."""
    if pct is None:
        pct = state.faults.rate_limit_usage_pct
    if pct is None:
        pct = min(1 + state.log.count() // 25, 15)
    usage = graph_dumps({"call_count": pct, "total_cputime": pct, "total_time": pct})
    return {
        "X-App-Usage": usage,
        "X-Page-Usage": usage,
        "X-Business-Use-Case-Usage": _buc_usage(page_ids, pct),
    }


def _buc_usage(page_ids: Sequence[str], pct: int) -> str:
    entry = {
        "type": "pages",
        "call_count": pct,
        "total_cputime": pct,
        "total_time": pct,
        "estimated_time_to_regain_access": 0,
    }
    return graph_dumps({page_id: [entry] for page_id in dict.fromkeys(page_ids)})


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


async def posts_endpoint(request: Request) -> Response:
    op = _operation_of(request, (request.path_params["object_id"], "posts"))
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

    return Prepared(op.page_ids, run, version=op.version)


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
    pages = tuple(dict.fromkeys(p for item in items if item.op for p in item.op.page_ids))

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
            raise GraphError("Unknown path components: /", code=2500)
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
    return [
        Route("/{version:graph_version}/{object_id}/posts", posts_endpoint, methods=["GET"]),
        Route("/{version:graph_version}/{object_id}", object_endpoint, methods=["GET"]),
        Route("/{version:graph_version}/", batch_endpoint, methods=["POST"]),
        Route("/{version:graph_version}", batch_endpoint, methods=["POST"]),
    ]
