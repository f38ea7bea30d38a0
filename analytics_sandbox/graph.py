"""Graph API primitives of the sandbox, shared by its Facebook and Instagram parts.

Error envelopes (`GraphError` and the constructors of the replies Graph really sends), the
`fields=` parser, Graph's JSON and time formats, cursors, and the `Operation` / `CallContext`
records every read runs with. No platform knowledge lives here: `sandbox.facebook` owns the
request pipeline and routes, `sandbox.instagram` the Instagram objects.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

DEFAULT_LIMIT = 25
MAX_LIMIT = 100


# --- errors ------------------------------------------------------------------------------------


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


def unknown_path(segments: Sequence[str]) -> GraphError:
    return GraphError(f"Unknown path components: /{'/'.join(segments)}", code=2500)


def too_many_batch_items() -> GraphError:
    return GraphError("(#1) Too many requests in batch message. Maximum batch size is 50", code=1)


def version_expired(latest: str) -> GraphError:
    """What Meta sends for an API version past its expiry date (code 2635)."""
    return GraphError(
        "(#2635) You are calling a deprecated version of the Graph API. Please update to the "
        f"latest version: {latest}.",
        code=2635,
    )


def _graph_clock(moment: dt.datetime) -> str:
    """Graph writes token times in US Pacific time; a fixed PST offset is close enough here."""
    pacific = moment.astimezone(dt.timezone(dt.timedelta(hours=-8)))
    return pacific.strftime("%A, %d-%b-%y %H:%M:%S PST")


# --- debug_token -------------------------------------------------------------------------------

DEBUG_TOKEN = "debug_token"  # noqa: S105 (a Graph path, not a secret)
DATA_ACCESS_DAYS = 90  # a user's data access lasts 90 days after their last visit
_SANDBOX_APP_ID = "100000000000001"
_SCOPES = (
    "pages_show_list",
    "pages_read_engagement",
    "read_insights",
    "instagram_basic",
    "instagram_manage_insights",
    "business_management",
)


def debug_token_body(
    input_token: str | None, limits: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    """`GET /debug_token?input_token=...` as Graph answers it for a Page token: `expires_at`
    0 (never) unless `limits` say otherwise, `data_access_expires_at` 90 days ahead, and an
    `error` member beside `is_valid: false` (see FaultState `meta_token_limits`)."""
    if not input_token:
        raise invalid_parameter("The parameter input_token is required")
    expires_in = limits.get("expires_in_s")
    access_in = limits.get("data_access_expires_in_s", DATA_ACCESS_DAYS * 86_400)
    digest = hashlib.sha256(input_token.encode()).hexdigest()
    data: dict[str, Any] = {
        "app_id": _SANDBOX_APP_ID,
        "type": "PAGE",
        "application": "Analytics Sandbox",
        "data_access_expires_at": int(now.timestamp()) + access_in,
        "expires_at": 0 if expires_in is None else int(now.timestamp()) + expires_in,
        "is_valid": bool(limits.get("is_valid", True)),
        "issued_at": int(now.timestamp()) - 30 * 86_400,
        "scopes": list(_SCOPES),
        "user_id": str(10_000_000 + int(digest[:8], 16) % 90_000_000),
    }
    if not data["is_valid"]:
        data["error"] = {
            "code": 190,
            "message": "Error validating access token: The session has been invalidated "
            "because the user changed their password or Facebook has changed the session for "
            "security reasons.",
            "subcode": 460,
        }
    return {"data": data}


# --- formats -----------------------------------------------------------------------------------


def graph_dumps(payload: Any) -> str:
    """Compact JSON with `/` escaped, byte-compatible with Graph's serializer style."""
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/")


def trace_id(seq: int, index: int = -1) -> str:
    digest = hashlib.sha256(f"fbtrace|{seq}|{index}".encode()).digest()
    return base64.b64encode(digest)[:11].decode().replace("+", "A").replace("/", "B")


def graph_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


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


def metric_names(raw: str) -> list[str]:
    """The names of a `metric=` parameter or a `.metric(...)` modifier."""
    return [name for name in raw.strip("[]").replace('"', "").split(",") if name.strip()]


# --- operations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One Graph read, already located: the path after the version and its parameters."""

    version: str
    segments: tuple[str, ...]  # path after the version, e.g. ("123", "posts")
    params: tuple[tuple[str, str], ...]  # query parameters in order

    @property
    def page_ids(self) -> tuple[str, ...]:
        """The Facebook page of a page or post id (see `sandbox.facebook.touched_accounts` for
        every kind of object)."""
        return (page_of(self.segments[0]),) if self.segments else ()

    def param(self, name: str) -> str | None:
        for key, value in self.params:
            if key == name:
                return value
        return None


def page_of(object_id: str) -> str:
    """The page a Graph object id belongs to (`<page>_<n>` posts, or the page itself)."""
    return object_id.partition("_")[0]


@dataclass(frozen=True)
class CallContext:
    token: str
    base_url: str  # scheme://host:port of this server, for `paging.next`
    seq: int
    now: dt.datetime  # the sandbox clock, read once per request


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or int(raw) < 1:
        raise invalid_parameter("Param limit must be a positive integer")
    return min(int(raw), MAX_LIMIT)


def parse_time(name: str, raw: str | None) -> dt.datetime | None:
    """Unix seconds (what our clients send) or an ISO date/datetime (Graph accepts both)."""
    if raw is None or raw == "":
        return None
    try:
        if raw.lstrip("-").isdigit():
            return dt.datetime.fromtimestamp(int(raw), dt.UTC)
        parsed = dt.datetime.fromisoformat(raw)
    except (ValueError, OverflowError, OSError) as err:
        raise invalid_parameter(f"Param {name} must be a unix timestamp or a date") from err
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def encode_cursor(sort_key: tuple[int, str]) -> str:
    ts, key = sort_key
    raw = json.dumps({"t": ts, "n": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        return int(decoded["t"]), str(decoded["n"])
    except (binascii.Error, ValueError, KeyError, TypeError) as err:
        raise invalid_parameter("Invalid cursor") from err


def page_url(op: Operation, ctx: CallContext, replace: dict[str, str]) -> str:
    """A `paging.next`/`previous` URL as Graph writes it: the token first, every original
    parameter, with `replace` overriding (Graph echoes the token: clients must strip it)."""
    kept = [(k, v) for k, v in op.params if k != "access_token" and k not in replace]
    query = [("access_token", ctx.token), *kept, *replace.items()]
    path = "/".join((op.version, *op.segments))
    return f"{ctx.base_url}/{path}?{urlencode(query)}"


def listing_body(
    op: Operation,
    ctx: CallContext,
    rendered: list[dict[str, Any]],
    keys: list[tuple[int, str]],
    limit: int,
    has_more: bool,
) -> dict[str, Any]:
    """A cursor-paged edge reply: `data`, cursors, and `next` only when more items exist."""
    body: dict[str, Any] = {"data": rendered}
    if keys:
        paging: dict[str, Any] = {
            "cursors": {"before": encode_cursor(keys[0]), "after": encode_cursor(keys[-1])}
        }
        if has_more:
            replace = {"limit": str(limit), "after": encode_cursor(keys[-1])}
            paging["next"] = page_url(op, ctx, replace)
        body["paging"] = paging
    return body


def insights_paging(
    op: Operation, ctx: CallContext, since: dt.datetime, until: dt.datetime
) -> dict[str, str]:
    """Graph's `paging` of a `period=day` insights reply: the same span before and after."""
    span = until - since
    return {
        "previous": page_url(
            op,
            ctx,
            {"since": str(int((since - span).timestamp())), "until": str(int(since.timestamp()))},
        ),
        "next": page_url(
            op,
            ctx,
            {"since": str(int(until.timestamp())), "until": str(int((until + span).timestamp()))},
        ),
    }
