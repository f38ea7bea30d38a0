"""LinkedIn Community Management REST API routes of the sandbox, in LinkedIn's wire format.

- `GET /rest/posts?author=&q=author&count=&start=&sortBy=` (start/count paging, `paging.total`)
- `GET /rest/organizationalEntityShareStatistics?q=organizationalEntity&organizationalEntity=
  [&shares=List(..)][&ugcPosts=List(..)][&timeIntervals=(timeRange:(start:,end:),
  timeGranularityType:DAY)]`
- `GET /rest/organizationalEntityFollowerStatistics?q=organizationalEntity&...[&timeIntervals]`
- `GET /rest/organizationPageStatistics?q=organization&organization=..[&timeIntervals]`
- `GET /rest/networkSizes/{org-urn}?edgeType=COMPANY_FOLLOWED_BY_MEMBER`
- `GET /rest/organizations/{id}` (an administered organization: `localizedName`, `vanityName`...)
- anything else under `/rest/` -> 404 `RESOURCE_NOT_FOUND`

Query values use Rest.li 2.0 syntax and are decoded from the RAW query string (the structure
`( ) , :` is literal, values inside are percent-encoded), as LinkedIn does.

Every request goes through `_linkedin_call`, checks in this order: artificial latency, bearer
token (`Authorization` header only; missing -> 401; a sandbox-issued `sbx-linkedin-at-...` token
that is unknown or expired -> 401 EXPIRED_ACCESS_TOKEN, revoked -> 401 REVOKED_ACCESS_TOKEN,
see oauth.py), `LinkedIn-Version` header (missing -> 400
VERSION_MISSING; malformed or in `faults.sunset_api_versions` -> 426 NONEXISTENT_VERSION),
`X-Restli-Protocol-Version: 2.0.0` (else 400), then the fault switches of the organizations the
request touches: expired token -> 401 EXPIRED_ACCESS_TOKEN (65602), permission_denied -> 403
ACCESS_DENIED (100), quota_exhausted -> 429 "APPLICATION DAY limit" (resets 00:00 UTC, no
Retry-After), transient -> 429 infrastructure throttle with `Retry-After: 1` (page_limit /
buc_limit), 500 JSON (server_error) or a 503 HTML page from a proxy (unavailable); then the
request's own validation (400s) and the reply. Deliberate choices:

- A deleted post (`deleted_posts`) disappears from `/rest/posts` and from statistics replies: a
  Rest.li finder returns the elements it finds and no error for the others (what LinkedIn does
  for a URN it has nothing for); the client reports such posts as skipped.
- Statistics exist for a rolling 12 months: a `timeRange.start` older than now minus 12 months
  answers 400 (as LinkedIn does); an interval shorter than one day at DAY granularity answers
  400; buckets that start in the future are left out. MONTH granularity is not simulated (400).
- Statistics per post have one element per UTC day from the post's publication day on, zeros
  included (LinkedIn sends 0, not nothing, for a quiet day). Without `timeIntervals` a post's or
  organization's element holds its totals over the last 12 months.
- At most 100 URNs per statistics call (LinkedIn documents no cap; the URL length sets one).
- An organization unknown to the sandbox (`SandboxConfig.known_pages`) answers 403 to finders
  and to organizations, 404 to networkSizes, as an organization the member does not
  administer would.
- The request log's `page_ids` are the organization URNs a request touched; `error_code` is the
  `serviceErrorCode` of an error reply; `batch_size` the number of post URNs of a statistics
  call. Tokens are never logged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Any
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from analytics_sandbox import linkedin_data as li
from analytics_sandbox.common import CallStart, Outcome, bearer_token, sandbox_call
from analytics_sandbox.faults import TransientKind
from analytics_sandbox.state import SandboxState

MAX_COUNT = 100
DEFAULT_COUNT = 10
MAX_STATS_URNS = 100
EDGE_TYPES = frozenset({"COMPANY_FOLLOWED_BY_MEMBER", "CompanyFollowedByMember"})
_VERSION_RE = re.compile(r"20\d\d(0[1-9]|1[0-2])(\.\d\d)?")
_JSON_TYPE = "application/json"


# --- errors ------------------------------------------------------------------------------------


class LinkedInError(Exception):
    """A LinkedIn error reply: `{"status":..,"serviceErrorCode":..,"code":..,"message":..}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        service_code: int | None = None,
        headers: Mapping[str, str] | None = None,
        fault: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.service_code = service_code
        self.headers = dict(headers or {})
        self.fault = fault  # the fault switch that produced this reply, for the request log

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status}
        if self.service_code is not None:
            body["serviceErrorCode"] = self.service_code
        if self.code is not None:
            body["code"] = self.code
        body["message"] = self.message
        return body


def bad_request(message: str) -> LinkedInError:
    return LinkedInError(400, message)


def missing_token() -> LinkedInError:
    return LinkedInError(401, "Empty oauth2_access_token", service_code=401)


def missing_version() -> LinkedInError:
    return LinkedInError(
        400,
        "A version must be present. Please specify a version by adding the LinkedIn-Version "
        "header.",
        code="VERSION_MISSING",
    )


def inactive_version(version: str) -> LinkedInError:
    return LinkedInError(
        426, f"Requested version {version} is not active", code="NONEXISTENT_VERSION"
    )


def expired_token() -> LinkedInError:
    return LinkedInError(
        401,
        "The token used in the request has expired",
        code="EXPIRED_ACCESS_TOKEN",
        service_code=65602,
    )


def revoked_token() -> LinkedInError:
    return LinkedInError(
        401,
        "The token used in the request has been revoked by the user",
        code="REVOKED_ACCESS_TOKEN",
        service_code=65601,
    )


def access_denied(resource: str, version: str) -> LinkedInError:
    return LinkedInError(
        403,
        f"Not enough permissions to access: {resource}.{version}",
        code="ACCESS_DENIED",
        service_code=100,
    )


def daily_quota() -> LinkedInError:
    return LinkedInError(
        429,
        "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
        code="TOO_MANY_REQUESTS",
        service_code=101,
    )


def not_found(message: str = "No virtual resource found") -> LinkedInError:
    return LinkedInError(404, message, code="RESOURCE_NOT_FOUND")


# --- Rest.li 2.0 query decoding ----------------------------------------------------------------


def raw_query_params(query: str) -> dict[str, str]:
    """`name -> raw value` of a query string, values NOT percent-decoded (Rest.li needs the
    structure characters apart from encoded ones). A repeated name keeps its last value."""
    params: dict[str, str] = {}
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[unquote(name)] = value
    return params


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced parentheses")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise ValueError("unbalanced parentheses")
    parts.append("".join(current))
    return parts


def restli_decode(raw: str) -> Any:
    """A raw Rest.li 2.0 value: `List(a,b)` -> list, `(k:v,..)` -> dict, else a decoded str."""
    if raw.startswith("List(") and raw.endswith(")"):
        inner = raw[5:-1]
        return [restli_decode(part) for part in _split_top(inner)] if inner else []
    if raw.startswith("(") and raw.endswith(")"):
        record: dict[str, Any] = {}
        inner = raw[1:-1]
        for part in _split_top(inner) if inner else []:
            key, sep, value = part.partition(":")
            if not sep:
                raise ValueError(f"record field without a value: {unquote(part)!r}")
            record[unquote(key)] = restli_decode(value)
        return record
    if any(char in raw for char in "(),"):
        raise ValueError(f"unexpected Rest.li structure in {unquote(raw)!r}")
    return unquote(raw)


# --- the request pipeline ----------------------------------------------------------------------


@dataclass(frozen=True)
class CallContext:
    now: dt.datetime
    version: str
    state: SandboxState


@dataclass
class Prepared:
    """A parsed request: the organizations it touches and how to produce its JSON body."""

    resource: str  # for ACCESS_DENIED messages, e.g. "posts.FINDER-author"
    org_ids: tuple[str, ...]
    run: Callable[[CallContext], Any]
    batch_size: int | None = None


def _failing(resource: str, error: LinkedInError, org_ids: tuple[str, ...] = ()) -> Prepared:
    def fail(ctx: CallContext) -> Any:
        raise error

    return Prepared(resource, org_ids, fail)


def _uuid(seq: int) -> str:
    return hashlib.sha256(f"li-request|{seq}".encode()).hexdigest()[:24]


async def _linkedin_call(request: Request, prepared: Prepared) -> Response:
    return await sandbox_call(
        request,
        partial(_linkedin_answer, request, prepared),
        page_ids=prepared.org_ids,
        batch_size=prepared.batch_size,
        token_params=("access_token", "oauth2_access_token"),
    )


def _linkedin_answer(request: Request, prepared: Prepared, call: CallStart) -> Outcome:
    """Request checks, the fault switches, then the reply."""
    state = call.state
    headers = {"X-RestLi-Protocol-Version": "2.0.0", "x-li-uuid": _uuid(call.seq)}
    fault: str | None = None
    error_code: int | None = None
    version = request.headers.get("linkedin-version", "").strip()
    try:
        _check_request(request, prepared, state, version)
        kind = state.faults.take_transient(prepared.org_ids)
        if kind is not None:
            fault = f"transient:{kind.value}"
            response = _transient_response(kind, headers)
        else:
            body = prepared.run(CallContext(call.now, version, state))
            response = Response(_dumps(body), 200, headers, media_type=_JSON_TYPE)
    except LinkedInError as err:
        error_code = err.service_code
        fault = err.fault
        response = Response(
            _dumps(err.body()), err.status, {**headers, **err.headers}, media_type=_JSON_TYPE
        )
    return Outcome(response, error_code, fault)


def _check_request(request: Request, prepared: Prepared, state: SandboxState, version: str) -> None:
    """Token, version, protocol and account fault checks: raises the error reply, if any."""
    token = bearer_token(request)
    if token is None:
        raise missing_token()
    _check_oauth_token(state, token)
    if not version:
        raise missing_version()
    faults = state.faults
    if not _VERSION_RE.fullmatch(version) or faults.any_in("sunset_api_versions", [version]):
        error = inactive_version(version)
        error.fault = "sunset_version" if _VERSION_RE.fullmatch(version) else None
        raise error
    if request.headers.get("x-restli-protocol-version", "").strip() != "2.0.0":
        raise bad_request("Invalid query parameters passed to request")
    orgs = prepared.org_ids
    if faults.any_in("expired_token_pages", orgs):
        error = expired_token()
        error.fault = "expired_token"
        raise error
    if faults.any_in("permission_denied_accounts", orgs):
        error = access_denied(prepared.resource, version)
        error.fault = "permission_denied"
        raise error
    if faults.any_in("quota_exhausted_accounts", orgs):
        error = daily_quota()
        error.fault = "quota_exhausted"
        raise error


def _check_oauth_token(state: SandboxState, token: str) -> None:
    """A token the sandbox issued must be known, unexpired and not revoked."""
    problem = state.tokens.check_access("linkedin", token, state.clock())
    if problem is None:
        return
    error = revoked_token() if problem == "revoked" else expired_token()
    error.fault = "oauth_token"
    raise error


def _transient_response(kind: TransientKind, headers: dict[str, str]) -> Response:
    if kind is TransientKind.UNAVAILABLE:  # a proxy answers: HTML, no LinkedIn headers
        html = "<html><head><title>503 Service Unavailable</title></head><body>Service "
        html += "Unavailable</body></html>"
        return Response(html, 503, media_type="text/html; charset=utf-8")
    if kind is TransientKind.SERVER_ERROR:
        error = LinkedInError(500, "Internal Server Error", service_code=0)
    else:  # page_limit / buc_limit: LinkedIn's short infrastructure-protection throttle
        error = LinkedInError(
            429,
            "Too Many Requests",
            code="TOO_MANY_REQUESTS",
            service_code=101,
            headers={"Retry-After": "1"},
        )
    return Response(
        _dumps(error.body()), error.status, {**headers, **error.headers}, media_type=_JSON_TYPE
    )


def _dumps(body: Any) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


# --- validation helpers ------------------------------------------------------------------------


def _params(request: Request) -> dict[str, str]:
    return raw_query_params(request.url.query)


def _decoded(params: Mapping[str, str], name: str) -> Any:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return restli_decode(raw)
    except ValueError as err:
        raise bad_request(f"Invalid value for param '{name}': {err}") from None


def _require_org(params: Mapping[str, str], name: str) -> str:
    value = _decoded(params, name)
    if not isinstance(value, str) or not li.ORG_URN_RE.fullmatch(value):
        raise bad_request(f"Param '{name}' must be an organization URN")
    return value


def _require_finder(params: Mapping[str, str], expected: str) -> None:
    if params.get("q") != expected:
        raise bad_request(f"Invalid query parameters passed to request: q must be {expected}")


def _int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise bad_request(f"Param '{name}' must be an integer in [{low}, {high}]")
    return int(raw)


@dataclass(frozen=True)
class Bucket:
    start_ms: int
    end_ms: int

    @property
    def day(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.start_ms / 1000, dt.UTC).date()

    def to_json(self) -> dict[str, int]:
        return {"start": self.start_ms, "end": self.end_ms}


def _buckets(params: Mapping[str, str], now: dt.datetime) -> list[Bucket] | None:
    """The DAY buckets of `timeIntervals` (None when absent: lifetime statistics)."""
    value = _decoded(params, "timeIntervals")
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("timeRange"), dict):
        raise bad_request("Param 'timeIntervals' must be (timeRange:(start:..,end:..),...)")
    granularity = value.get("timeGranularityType", "DAY")
    if granularity != "DAY":
        raise bad_request(f"timeGranularityType {granularity} is not supported by the sandbox")
    time_range = value["timeRange"]
    try:
        start, end = int(time_range["start"]), int(time_range["end"])
    except (KeyError, TypeError, ValueError):
        raise bad_request("timeRange needs integer start and end (epoch milliseconds)") from None
    if end - start < li.DAY_MS:
        raise bad_request("Invalid time range: a DAY interval must span at least one day")
    oldest = li.to_ms(li.twelve_months_before(now))
    if start < oldest:
        raise bad_request(
            f"Invalid time range: start {start} is more than 12 months in the past; statistics "
            "are only available for a rolling 12-month window"
        )
    now_ms = li.to_ms(now)
    buckets = []
    moment = start
    while moment < end and moment <= now_ms:
        buckets.append(Bucket(moment, moment + li.DAY_MS))
        moment += li.DAY_MS
    return buckets


def _check_org(ctx: CallContext, org: str, resource: str) -> None:
    if not li.org_exists(org, ctx.state.config):
        raise access_denied(resource, ctx.version)


def _paging(start: int, count: int, links: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    return {"start": start, "count": count, "links": list(links)}


# --- posts -------------------------------------------------------------------------------------


def prepare_posts(request: Request) -> Prepared:
    resource = "posts.FINDER-author"
    params = _params(request)
    try:
        org = _require_org_finder(params, "author")
        count = _int_param(params, "count", DEFAULT_COUNT, 1, MAX_COUNT)
        start = _int_param(params, "start", 0, 0, 10**9)
        sort_by = params.get("sortBy", "LAST_MODIFIED")
        if sort_by not in ("CREATED", "LAST_MODIFIED"):
            raise bad_request("Param 'sortBy' must be CREATED or LAST_MODIFIED")
    except LinkedInError as err:
        return _failing_finder(resource, err, params, "author")

    def run(ctx: CallContext) -> Any:
        _check_org(ctx, org, resource)
        return list_posts(ctx, org, start=start, count=count, sort_by=sort_by)

    return Prepared(resource, (org,), run)


def _require_org_finder(params: Mapping[str, str], name: str) -> str:
    """The organization URN of a `q=<name>&<name>=<org-urn>` finder."""
    _require_finder(params, name)
    return _require_org(params, name)


def _failing_finder(
    resource: str, error: LinkedInError, params: Mapping[str, str], name: str
) -> Prepared:
    """A finder that fails `error`, logged against its organization when that one is valid."""
    org_value = _decoded_or_none(params, name)
    return _failing(resource, error, (org_value,) if org_value else ())


def _decoded_or_none(params: Mapping[str, str], name: str) -> str | None:
    try:
        value = _decoded(params, name)
    except LinkedInError:
        return None
    return value if isinstance(value, str) and li.ORG_URN_RE.fullmatch(value) else None


def list_posts(ctx: CallContext, org: str, *, start: int, count: int, sort_by: str) -> Any:
    config, now = ctx.state.config, ctx.now
    deleted = ctx.state.faults.deleted_posts
    posts = li.iter_posts_created_desc(org, now, config)
    if sort_by == "LAST_MODIFIED":
        posts = _by_last_modified(org, now, ctx)
    visible = (p for p in posts if p.urn not in deleted)
    page = list(islice(visible, start, start + count))
    total = li.count_posts(org, now, config) - _deleted_count(org, deleted, now, ctx)
    links = []
    query = f"author={_enc(org)}&count={count}&q=author&sortBy={sort_by}"
    if start > 0:
        links.append(_link("prev", f"/rest/posts?{query}&start={max(0, start - count)}"))
    if start + count < total:
        links.append(_link("next", f"/rest/posts?{query}&start={start + count}"))
    paging = _paging(start, count, links)
    paging["total"] = total
    return {"paging": paging, "elements": [render_post(p) for p in page]}


def _by_last_modified(org: str, now: dt.datetime, ctx: CallContext) -> Iterator[li.LiPost]:
    day = now.date()
    floor = day - dt.timedelta(days=ctx.state.config.history_days)
    while day >= floor:
        todays = [p for p in li.posts_for_day(org, day, ctx.state.config) if p.published_at <= now]
        yield from sorted(todays, key=lambda p: (p.last_modified_at, p.urn), reverse=True)
        day -= dt.timedelta(days=1)


def _deleted_count(org: str, deleted: frozenset[str], now: dt.datetime, ctx: CallContext) -> int:
    floor = now.date() - dt.timedelta(days=ctx.state.config.history_days)
    count = 0
    for urn in deleted:
        post = li.decode_post_urn(urn, ctx.state.config)
        if post is not None and post.org == org and post.published_at <= now and post.day >= floor:
            count += 1
    return count


def _enc(value: str) -> str:
    return quote(value, safe="")


def _link(rel: str, href: str) -> dict[str, str]:
    return {"type": "application/json", "rel": rel, "href": href}


def render_post(post: li.LiPost) -> dict[str, Any]:
    body: dict[str, Any] = {
        "isReshareDisabledByAuthor": False,
        "createdAt": li.to_ms(post.created_at),
        "lifecycleState": "PUBLISHED",
        "lastModifiedAt": li.to_ms(post.last_modified_at),
        "visibility": "PUBLIC",
        "publishedAt": li.to_ms(post.published_at),
        "author": post.org,
        "id": post.urn,
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "commentary": post.commentary,
        "lifecycleStateInfo": {"isEditedByAuthor": False},
    }
    content = li.content_of(post)
    if content is not None:
        body["content"] = content
    parent = li.reshare_parent(post)
    if parent is not None:
        body["reshareContext"] = {"parent": parent, "root": parent}
    return body


# --- share statistics --------------------------------------------------------------------------


def prepare_share_statistics(request: Request) -> Prepared:
    resource = "organizationalEntityShareStatistics.FINDER-organizationalEntity"
    params = _params(request)
    try:
        org = _require_org_finder(params, "organizationalEntity")
        shares = _urn_list(params, "shares")
        ugc_posts = _urn_list(params, "ugcPosts")
    except LinkedInError as err:
        return _failing_finder(resource, err, params, "organizationalEntity")
    requested = [("share", u) for u in shares] + [("ugcPost", u) for u in ugc_posts]
    size = len(requested) if ("shares" in params or "ugcPosts" in params) else None

    def run(ctx: CallContext) -> Any:
        _check_org(ctx, org, resource)
        if len(requested) > MAX_STATS_URNS:
            raise bad_request(f"At most {MAX_STATS_URNS} shares and ugcPosts per request")
        buckets = _buckets(params, ctx.now)
        if size is None:
            elements = _org_share_elements(ctx, org, buckets)
        else:
            elements = _post_share_elements(ctx, org, requested, buckets)
        return {"paging": _paging(0, len(elements)), "elements": elements}

    return Prepared(resource, (org,), run, batch_size=size)


def _urn_list(params: Mapping[str, str], name: str) -> list[str]:
    value = _decoded(params, name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(f"Param '{name}' must be List(urn,...)")
    return value


def _org_share_elements(
    ctx: CallContext, org: str, buckets: list[Bucket] | None
) -> list[dict[str, Any]]:
    config = ctx.state.config
    if buckets is None:
        total = li.ZERO
        for day in _last_twelve_months(ctx.now):
            total = total + li.org_day_stats(org, day, config)
        return [{"organizationalEntity": org, "totalShareStatistics": total.to_json()}]
    return [
        {
            "organizationalEntity": org,
            "timeRange": bucket.to_json(),
            "totalShareStatistics": li.org_day_stats(org, bucket.day, config).to_json(),
        }
        for bucket in buckets
    ]


def _post_share_elements(
    ctx: CallContext,
    org: str,
    requested: Sequence[tuple[str, str]],
    buckets: list[Bucket] | None,
) -> list[dict[str, Any]]:
    config = ctx.state.config
    deleted = ctx.state.faults.deleted_posts
    elements: list[dict[str, Any]] = []
    for key, urn in requested:
        post = li.decode_post_urn(urn, config)
        if post is None or post.org != org or post.kind != key or urn in deleted:
            continue  # a finder returns what it finds: nothing for this URN
        if post.published_at > ctx.now:
            continue
        if buckets is None:
            total = li.ZERO
            for day in _last_twelve_months(ctx.now):
                total = total + li.post_day_stats(post, day, config)
            elements.append(
                {"organizationalEntity": org, key: urn, "totalShareStatistics": total.to_json()}
            )
            continue
        for bucket in buckets:
            if bucket.day < post.day:
                continue
            elements.append(
                {
                    "organizationalEntity": org,
                    key: urn,
                    "timeRange": bucket.to_json(),
                    "totalShareStatistics": li.post_day_stats(post, bucket.day, config).to_json(),
                }
            )
    return elements


def _last_twelve_months(now: dt.datetime) -> list[dt.date]:
    first = li.twelve_months_before(now).date() + dt.timedelta(days=1)
    return [first + dt.timedelta(days=i) for i in range((now.date() - first).days + 1)]


# --- follower and page statistics ---------------------------------------------------------------


ElementsOf = Callable[[CallContext, str, list[Bucket] | None], list[dict[str, Any]]]


def _org_statistics(request: Request, resource: str, finder: str, elements: ElementsOf) -> Prepared:
    """A statistics finder of one organization: `elements(ctx, org, buckets)` per request."""
    params = _params(request)
    try:
        org = _require_org_finder(params, finder)
    except LinkedInError as err:
        return _failing_finder(resource, err, params, finder)

    def run(ctx: CallContext) -> Any:
        _check_org(ctx, org, resource)
        found = elements(ctx, org, _buckets(params, ctx.now))
        return {"paging": _paging(0, len(found)), "elements": found}

    return Prepared(resource, (org,), run)


def prepare_follower_statistics(request: Request) -> Prepared:
    resource = "organizationalEntityFollowerStatistics.FINDER-organizationalEntity"
    return _org_statistics(request, resource, "organizationalEntity", _follower_elements)


def _follower_elements(
    ctx: CallContext, org: str, buckets: list[Bucket] | None
) -> list[dict[str, Any]]:
    if buckets is None:
        return [
            {
                "followerCountsByAssociationType": [],
                "followerCountsBySeniority": [],
                "followerCountsByIndustry": [],
                "followerCountsByFunction": [],
                "followerCountsByStaffCountRange": [],
                "followerCountsByGeoCountry": [],
                "followerCountsByGeo": [],
                "organizationalEntity": org,
            }
        ]
    elements = []
    for bucket in buckets:
        gain = li.follower_gain(org, bucket.day, ctx.state.config)
        elements.append(
            {
                "timeRange": bucket.to_json(),
                "followerGains": {
                    "organicFollowerGain": gain.organic,
                    "paidFollowerGain": gain.paid,
                },
                "organizationalEntity": org,
            }
        )
    return elements


def prepare_page_statistics(request: Request) -> Prepared:
    resource = "organizationPageStatistics.FINDER-organization"
    return _org_statistics(request, resource, "organization", _page_elements)


def _page_elements(
    ctx: CallContext, org: str, buckets: list[Bucket] | None
) -> list[dict[str, Any]]:
    config = ctx.state.config
    if buckets is None:
        views = sum(li.page_views(org, day, config) for day in _last_twelve_months(ctx.now))
        return [{"totalPageStatistics": _page_stats(views), "organization": org}]
    return [
        {
            "timeRange": bucket.to_json(),
            "totalPageStatistics": _page_stats(li.page_views(org, bucket.day, config)),
            "organization": org,
        }
        for bucket in buckets
    ]


def _page_stats(views: int) -> dict[str, Any]:
    desktop = views * 3 // 5
    return {
        "clicks": {"mobileCustomButtonClickCounts": [], "desktopCustomButtonClickCounts": []},
        "views": {
            "allPageViews": {"pageViews": views},
            "allDesktopPageViews": {"pageViews": desktop},
            "allMobilePageViews": {"pageViews": views - desktop},
        },
    }


# --- network size ------------------------------------------------------------------------------


def prepare_network_size(request: Request) -> Prepared:
    resource = "networkSizes.GET"
    entity = request.path_params["entity"]  # already percent-decoded by the server
    params = _params(request)
    if not li.ORG_URN_RE.fullmatch(entity):
        return _failing(resource, bad_request("The key must be an organization URN"))
    edge_type = unquote(params.get("edgeType", ""))
    if edge_type not in EDGE_TYPES:
        return _failing(
            resource, bad_request("Param 'edgeType' must be COMPANY_FOLLOWED_BY_MEMBER"), (entity,)
        )

    def run(ctx: CallContext) -> Any:
        if not li.org_exists(entity, ctx.state.config):
            raise not_found(f"Organization {entity} not found")
        return {"firstDegreeSize": li.follower_total(entity, ctx.now.date(), ctx.state.config)}

    return Prepared(resource, (entity,), run)


_ORG_ID_RE = re.compile(r"[1-9]\d{0,17}")


def prepare_organization(request: Request) -> Prepared:
    """`GET /rest/organizations/{id}` (Retrieve an Administered Organization): the fields an
    administrator sees; the `permission_denied_accounts` fault answers 403 ACCESS_DENIED like a
    member without an administrator role."""
    resource = "organizations.GET"
    raw_id = request.path_params["org_id"]
    if not _ORG_ID_RE.fullmatch(raw_id):
        return _failing(resource, bad_request(f"Invalid organization id: {raw_id[:40]}"))
    urn = f"urn:li:organization:{raw_id}"

    def run(ctx: CallContext) -> Any:
        if not li.org_exists(urn, ctx.state.config):  # not administered by this member
            raise access_denied(resource, ctx.version)
        return render_organization(urn)

    return Prepared(resource, (urn,), run)


def render_organization(urn: str) -> dict[str, Any]:
    org_id = li.org_id(urn)
    name = f"Sandbox Org {org_id}"
    vanity = f"sandbox-org-{org_id}"
    locale = {"country": "US", "language": "en"}
    return {
        "id": int(org_id),
        "$URN": urn,
        "localizedName": name,
        "name": {"localized": {"en_US": name}, "preferredLocale": locale},
        "vanityName": vanity,
        "localizedWebsite": f"https://www.example.com/{vanity}",
        "defaultLocale": locale,
        "primaryOrganizationType": "NONE",
        "organizationType": "PRIVATELY_HELD",
        "versionTag": "1",
        "locations": [],
        "groups": [],
        "alternativeNames": [],
        "specialties": [],
        "localizedSpecialties": [],
        "industries": [],
    }


def prepare_unknown(request: Request) -> Prepared:
    return _failing(f"{request.url.path}.GET", not_found())


# --- routes ------------------------------------------------------------------------------------


def _endpoint(prepare: Callable[[Request], Prepared]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        return await _linkedin_call(request, prepare(request))

    return endpoint


def routes() -> list[BaseRoute]:
    return [
        Route("/rest/posts", _endpoint(prepare_posts), methods=["GET"]),
        Route(
            "/rest/organizationalEntityShareStatistics",
            _endpoint(prepare_share_statistics),
            methods=["GET"],
        ),
        Route(
            "/rest/organizationalEntityFollowerStatistics",
            _endpoint(prepare_follower_statistics),
            methods=["GET"],
        ),
        Route(
            "/rest/organizationPageStatistics",
            _endpoint(prepare_page_statistics),
            methods=["GET"],
        ),
        Route("/rest/networkSizes/{entity}", _endpoint(prepare_network_size), methods=["GET"]),
        Route("/rest/organizations/{org_id}", _endpoint(prepare_organization), methods=["GET"]),
        Route("/rest/{rest:path}", _endpoint(prepare_unknown), methods=["GET"]),
    ]
