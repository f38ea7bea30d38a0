"""Meta Graph API plumbing shared by the Facebook Pages and Instagram clients.

Both platforms talk to the same host with the same conventions, so this module holds what they
share, once:

- Error classification by Graph `error.code` / `error_subcode` / `is_transient`, never by HTTP
  status alone (`classify_graph_error`, `classify_response`).
- Usage headers (`X-App-Usage`, `X-Page-Usage`, `X-Business-Use-Case-Usage`) turned into a pause
  before the next request (`usage_pause`), and the `ApiSession` built with both
  (`create_graph_session`).
- `GraphApi`: JSON object reads, `paging.next` handling (token stripped, host pinned, page cap)
  and the batch engine (`GraphApi.run`): many reads per `POST /` call, `null` and transient
  items retried a bounded number of times, and an invalid or deprecated insights metric pinned
  down and dropped -- only for the kind of object that rejected it (an `Ask.family`: Instagram's
  media_type/media_product_type, Facebook's post item, reel or page), for the client's lifetime
  (one run) -- while the rest is still fetched.
- Graph timestamps, and the mapping of `period=day` insights values (whose `end_time` is the
  END of a US-Pacific day) onto calendar dates (`pacific_day`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import zoneinfo
from collections.abc import Callable, Generator, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import requests

from analytics_pipeline.platforms import common
from analytics_pipeline.platforms.base import PlatformError, Secret
from analytics_pipeline.platforms.common import (
    capped_pages,
    day_start,
    excerpt,
    invalid_response,
    is_transient_status,
    json_or_none,
    status_error,
)
from analytics_pipeline.platforms.http import ApiSession, RetryConfig, safe_url
from analytics_pipeline.platforms.redact import redact, redacting_logger, strip_access_token
from analytics_pipeline.records import ErrorClass

__all__ = [
    "DEFAULT_GRAPH_API_VERSION",
    "GRAPH_BATCH_LIMIT",
    "Ask",
    "GraphApi",
    "GraphPlatform",
    "GraphSettings",
    "InvalidMetricError",
    "NotEnoughViewersError",
    "as_int",
    "check_graph_version",
    "classify_graph_error",
    "classify_response",
    "create_graph_session",
    "daily_value",
    "day_start",
    "excerpt",
    "insights_by_name",
    "invalid_response",
    "json_or_none",
    "last_value",
    "pacific_day",
    "parse_graph_time",
    "unix",
    "usage_pause",
]

logger = redacting_logger("analytics_pipeline.platforms.graph")

GRAPH_BATCH_LIMIT = 50
# Graph edges (a Page's posts, an IG user's media) return at most 100 objects per page.
GRAPH_MAX_PAGE_SIZE = 100
DEFAULT_GRAPH_API_VERSION = "v25.0"
_VERSION_RE = re.compile(r"v\d+\.\d+")
PACIFIC = zoneinfo.ZoneInfo("America/Los_Angeles")

# Error codes (https://developers.facebook.com/docs/graph-api/guides/error-handling).
_TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 368, 613})
_BUC_THROTTLE_CODES = range(80000, 80100)  # business-use-case throttles: 80001 Pages, 80002 IG
_TOKEN_CODE = 190
_PERMISSION_CODES = frozenset({10, *range(200, 300)})
_OBJECT_ERRORS = frozenset({(100, 33), (100, 2108006)})
_VERSION_EXPIRED_CODE = 2635  # "(#2635) You are calling a deprecated version of the ... API"
# One invalid or deprecated metric fails the whole call. Facebook says "(#100) The value must
# be a valid insights metric"; Instagram says "(#100) The Media Insights API does not support
# the views metric for this media product type", "(#100) metric[0] must be one of the following
# values: ..." or "Starting from version 22 and above, the impressions metric is no longer
# supported for the queried user".
_INVALID_METRIC = re.compile(
    r"valid insights? metric|does not support the \S+ metric|metric\[\d+\] must be one of"
    r"|metric is no longer supported|metric \S+ is not supported",
    re.IGNORECASE,
)
_NOT_ENOUGH_VIEWERS = re.compile(r"not enough viewers", re.IGNORECASE)
# Items of one family tried in turn to pin an invalid metric down (the first may be gone).
_PROBE_CANDIDATES = 3

_USAGE_HEADERS = ("X-App-Usage", "X-Page-Usage")
_BUC_HEADER = "X-Business-Use-Case-Usage"
_USAGE_KEYS = ("call_count", "total_cputime", "total_time")


@dataclass(frozen=True)
class GraphPlatform:
    """Which client speaks: its name in errors, and the prefix of its settings."""

    name: str  # "facebook", "instagram"
    env_prefix: str  # "ANALYTICS_FACEBOOK"

    @property
    def version_setting(self) -> str:
        return f"{self.env_prefix}_API_VERSION"


class InvalidMetricError(PlatformError):
    """Graph's `(#100) ... must be a valid insights metric`: one invalid or deprecated metric
    fails the whole call. `GraphApi.run` finds which one and drops it."""


class NotEnoughViewersError(PlatformError):
    """Instagram's `(#10) Not enough viewers for the media to show insights`.

    Code 10 is a permission code everywhere else; with this message it means "no data for this
    media" (a story seen by fewer than 5 accounts), so it is a PERMANENT_OBJECT error of one item
    that clients turn into NULL metrics, never a credential problem."""


def check_graph_version(version: str) -> None:
    if not _VERSION_RE.fullmatch(version):
        raise ValueError(f"api_version must look like v25.0, got {version!r}")


class GraphSettings:
    """What the settings of every Graph client have (a base of frozen dataclasses that declare
    these fields): host and version, paging, batching, usage throttle and retry policy."""

    base_url: str
    api_version: str
    page_size: int
    batch_size: int
    max_pages: int
    usage_slowdown_pct: float
    usage_max_pause_s: float
    retry: RetryConfig

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= GRAPH_BATCH_LIMIT:
            raise ValueError(f"batch_size must be 1..{GRAPH_BATCH_LIMIT}")
        if not 1 <= self.page_size <= GRAPH_MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{GRAPH_MAX_PAGE_SIZE}")
        if self.max_pages < 1:
            raise ValueError("max_pages must be >= 1")
        if not 0 <= self.usage_slowdown_pct < 100:
            raise ValueError("usage_slowdown_pct must be in [0, 100)")
        check_graph_version(self.api_version)

    @property
    def api_root(self) -> str:
        return f"{self.base_url.rstrip('/')}/{self.api_version}"


# --------------------------------------------------------------------------- small helpers


def as_int(value: Any) -> int | None:
    """An integer from a JSON value, or None (booleans and fractions are not counts; Graph
    sometimes sends counts as text, `"12"` or `"-1"`, which are)."""
    return common.as_int(value, text="signed")


def unix(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def parse_graph_time(value: Any, *, platform: str, name: str = "created_time") -> dt.datetime:
    """Graph's `2026-11-20T14:03:11+0000` (also other ISO 8601 forms) as aware UTC."""
    if not isinstance(value, str):
        raise invalid_response(platform, f"{name} is not a string: {value!r}")
    try:
        parsed = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise invalid_response(platform, f"unparseable {name} {value!r}") from None
    if parsed.tzinfo is None:
        raise invalid_response(platform, f"{name} without a timezone: {value!r}")
    return parsed.astimezone(dt.UTC)


def pacific_day(end_time: dt.datetime) -> dt.date:
    """The calendar date a Graph `period=day` insights value belongs to.

    Graph stamps a daily value with `end_time` = the END of a US-Pacific day, i.e. midnight
    America/Los_Angeles of the next day: 08:00 UTC in standard time, 07:00 UTC in daylight
    saving time. The value belongs to the Pacific day that ENDS there, which we record under the
    same calendar date (it overlaps that UTC date for 16-17 of its 23-25 hours):

        end_time 2026-11-21T08:00:00+0000 (00:00 PST Nov 21) -> 2026-11-20
        end_time 2026-03-09T07:00:00+0000 (00:00 PDT Mar 9)  -> 2026-03-08 (a 23-hour day)

    Rounded to the nearest Pacific midnight first, so an end_time a few hours off (a proxy
    normalising times, a 23:00 stamp) still lands on the same date.
    """
    local = end_time.astimezone(PACIFIC) + dt.timedelta(hours=12)
    return local.date() - dt.timedelta(days=1)


def daily_value(entry: Mapping[str, Any], day: dt.date, *, platform: str) -> int | None:
    """The value of a `period=day` insights entry that belongs to `day` (see `pacific_day`),
    or None when the reply has no value for it."""
    values = entry.get("values")
    for item in values if isinstance(values, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("end_time"), str):
            continue
        try:
            end_time = parse_graph_time(item["end_time"], platform=platform, name="end_time")
        except PlatformError:
            logger.debug("ignoring an insights value with a malformed end_time")
            continue
        if pacific_day(end_time) == day:
            return as_int(item.get("value"))
    return None


def last_value(entry: Mapping[str, Any]) -> Any:
    """The last `values[].value` of an insights entry (a lifetime metric has one), or None."""
    values = entry.get("values")
    if not isinstance(values, list) or not values or not isinstance(values[-1], dict):
        return None
    return values[-1].get("value")


def insights_by_name(data: Any, value_of: Callable[[Mapping[str, Any]], Any]) -> dict[str, Any]:
    """`{metric name: value_of(entry)}` of an insights `data` list (first entry of a name
    wins; malformed entries are left out)."""
    by_name: dict[str, Any] = {}
    for entry in data if isinstance(data, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            by_name.setdefault(entry["name"], value_of(entry))
    return by_name


# --------------------------------------------------------------------------- classification


def classify_graph_error(
    error: Mapping[str, Any],
    *,
    platform: GraphPlatform,
    http_status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> PlatformError:
    """Classify a Graph `{"error": {...}}` object by code/subcode/is_transient, not HTTP status.

    | code                                   | class                                     |
    |----------------------------------------|-------------------------------------------|
    | 10 "Not enough viewers" (Instagram)    | NotEnoughViewersError (PERMANENT_OBJECT)  |
    | 190 (any subcode, e.g. 458-467)        | PERMANENT_CREDENTIAL                      |
    | 10, 200-299 (permissions)              | PERMANENT_CREDENTIAL                      |
    | 2635 (API version no longer served)    | PERMANENT_CONFIG, names the setting       |
    | 100 / 33, 100 / 2108006                | PERMANENT_OBJECT                          |
    | 1, 2, 4, 17, 32, 341, 368, 613, 8000x  | TRANSIENT                                 |
    | is_transient: true, or HTTP 5xx        | TRANSIENT                                 |
    | 100 invalid/deprecated metric (the     | InvalidMetricError (INVALID_RESPONSE)     |
    |   messages of `_INVALID_METRIC`)       |                                           |
    | anything else (100 invalid parameter,  | INVALID_RESPONSE: a bug on our side,      |
    |   803 unknown alias, ...)              |   no retry                                |

    Credential and object errors win over `is_transient`: retrying a revoked token only burns
    quota. A BUC `estimated_time_to_regain_access` in `headers` becomes `retry_after`.
    """
    code = as_int(error.get("code"))
    subcode = as_int(error.get("error_subcode"))
    raw_message = error.get("message")
    message = str(raw_message) if raw_message is not None else "(no message)"
    details = [f"type={error.get('type')}"] if error.get("type") else []
    if error.get("fbtrace_id"):
        details.append(f"fbtrace_id={error.get('fbtrace_id')}")
    text = redact(f"{message} [{', '.join(details)}]" if details else message)
    code_text = None if code is None else (f"{code}/{subcode}" if subcode else str(code))

    def make(
        error_class: ErrorClass, cls: type[PlatformError] = PlatformError, note: str = ""
    ) -> PlatformError:
        return cls(
            error_class,
            text + note,
            platform=platform.name,
            code=code_text,
            http_status=http_status,
        )

    if code == 10 and _NOT_ENOUGH_VIEWERS.search(message):
        return make(ErrorClass.PERMANENT_OBJECT, NotEnoughViewersError)
    if code == _TOKEN_CODE or code in _PERMISSION_CODES:
        return make(ErrorClass.PERMANENT_CREDENTIAL)
    if code == _VERSION_EXPIRED_CODE:
        note = (
            f" -- the configured Graph API version is no longer served: set "
            f"{platform.version_setting} to a supported version (vNN.0, see "
            "https://developers.facebook.com/docs/graph-api/changelog/versions)"
        )
        return make(ErrorClass.PERMANENT_CONFIG, note=note)
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


def classify_response(
    response: requests.Response, *, platform: GraphPlatform
) -> PlatformError | None:
    """`ApiSession` classifier for top-level Graph replies: None when the reply is usable JSON.

    Graph error envelopes go through `classify_graph_error`; a non-JSON 5xx (an HTML error page
    from a proxy) or a 429 is TRANSIENT; any other non-2xx, or a 2xx that is not JSON, is
    INVALID_RESPONSE with a short redacted excerpt. The SHAPE of a JSON body is checked by the
    caller, which knows what it asked for.
    """
    status = response.status_code
    body = json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return classify_graph_error(
            body["error"], platform=platform, http_status=status, headers=response.headers
        )
    if 200 <= status < 300 and body is not None:
        return None
    text = excerpt(response.text or "")
    error_class = (
        ErrorClass.TRANSIENT if is_transient_status(status) else ErrorClass.INVALID_RESPONSE
    )
    what = "non-JSON reply" if body is None else "reply without a Graph error object"
    return status_error(error_class, platform.name, status, f"HTTP {status} {what}: {text}")


# --------------------------------------------------------------------------- usage headers


def _usage_header(headers: Mapping[str, str], name: str) -> Any:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        logger.warning("ignoring malformed %s header: %s", name, excerpt(str(raw)))
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


def usage_pause(headers: Mapping[str, str], *, slowdown_pct: float, max_pause_s: float) -> float:
    """Seconds to pause before the next request, from Meta's usage headers.

    u = the highest of call_count / total_cputime / total_time over X-App-Usage, X-Page-Usage
    and every X-Business-Use-Case-Usage entry (percentages). With s = slowdown_pct:
        pause = 0                                          if u <= s
        pause = max_pause_s * min(1, (u - s) / (100 - s))  otherwise
    so 80 % -> 0 s, 90 % -> 30 s, >= 100 % -> 60 s with the defaults (80, 60). A BUC
    `estimated_time_to_regain_access` > 0 raises it to that many minutes; `ApiSession` refuses
    to sleep longer than `max_wait_s` and raises a transient error with `retry_after` instead.
    Malformed headers are logged and ignored.
    """
    usage = _max_usage_pct(headers)
    pause = 0.0
    if usage > slowdown_pct:
        span = 100.0 - slowdown_pct
        pause = max_pause_s * min(1.0, (usage - slowdown_pct) / span)
    return max(pause, _buc_regain_seconds(headers))


def create_graph_session(
    platform: GraphPlatform,
    settings: GraphSettings,
    *,
    sleep: Callable[[float], None] = time.sleep,
    http: requests.Session | None = None,
) -> ApiSession:
    """The `ApiSession` of a Graph client: Graph classifier, the retry policy of `settings`,
    and a throttle from the usage headers with its slowdown threshold and maximum pause."""
    return ApiSession(
        platform.name,
        lambda response: classify_response(response, platform=platform),
        settings.retry,
        throttle=lambda response: usage_pause(
            response.headers,
            slowdown_pct=settings.usage_slowdown_pct,
            max_pause_s=settings.usage_max_pause_s,
        ),
        sleep=sleep,
        session=http,
    )


# --------------------------------------------------------------------------- the batch engine

T = TypeVar("T")


@dataclass(frozen=True)
class Ask(Generic[T]):
    """One read inside a Graph batch.

    `url(metrics)` builds the item's `relative_url` for the metrics still asked (the configured
    `metrics` minus those the platform rejected for `family`); `parse(body)` turns a successful
    item body into the caller's record. `probe_url(metric)` is the one-metric read used to pin an
    invalid metric down (default: `url([metric])`). With `metrics_required`, an ask whose every
    metric was rejected is not sent: it is answered with `parse({})`.

    `family` is the scope of a rejection: the kind of object the platform accepts or rejects a
    metric for (Instagram "VIDEO/FEED", "IMAGE/FEED", "VIDEO/REELS", ...; Facebook "post",
    "reel", "page"). A metric rejected for one family is still asked for every other one.
    """

    key: Hashable
    url: Callable[[Sequence[str]], str]
    parse: Callable[[Mapping[str, Any]], T]
    metrics: tuple[str, ...] = ()
    family: str = ""
    probe_url: Callable[[str], str] | None = None
    metrics_required: bool = False

    def probe(self, metric: str) -> str:
        return self.probe_url(metric) if self.probe_url is not None else self.url([metric])


# What one batch item turned into: the parsed record, a classified error, or None (`null`).
_Outcome = Any


@dataclass
class _Round:
    done: dict[Hashable, Any] = field(default_factory=dict)
    retry: list[Ask[Any]] = field(default_factory=list)
    metric_failed: list[Ask[Any]] = field(default_factory=list)
    last_transient: PlatformError | None = None
    invalid_metric: InvalidMetricError | None = None


class GraphApi:
    """Reads against one Graph host and version with one account's token (sent only as the
    session's Authorization header), through one `ApiSession`.

    Metrics the platform rejects as invalid are remembered per `Ask.family` (e.g. "post",
    "reel", "VIDEO/FEED") for the lifetime of this object (a client is made per integration and
    run), so later calls stop asking them for that family only; every other family keeps asking.
    """

    def __init__(
        self,
        platform: GraphPlatform,
        session: ApiSession,
        token: Secret,
        *,
        base_url: str,
        api_version: str,
        batch_size: int = GRAPH_BATCH_LIMIT,
        max_pages: int = 200,
    ) -> None:
        if not 1 <= batch_size <= GRAPH_BATCH_LIMIT:
            raise ValueError(f"batch_size must be 1..{GRAPH_BATCH_LIMIT}")
        self.platform = platform
        self.session = session
        self._token = token
        self.base_url = base_url
        self.api_root = f"{base_url.rstrip('/')}/{api_version}"
        self.batch_size = batch_size
        self.max_pages = max_pages
        root = urlsplit(base_url)
        self._origin = (root.scheme.lower(), root.netloc.lower())
        self._rejected: dict[str, list[str]] = {}  # family -> rejected metrics, in order
        self._accepted: dict[str, set[str]] = {}  # family -> metrics answered without an error

    @classmethod
    def for_settings(
        cls, platform: GraphPlatform, session: ApiSession, settings: GraphSettings, token: Secret
    ) -> GraphApi:
        """A GraphApi with the host, version, batch size and page cap of `settings`."""
        return cls(
            platform,
            session,
            token,
            base_url=settings.base_url,
            api_version=settings.api_version,
            batch_size=settings.batch_size,
            max_pages=settings.max_pages,
        )

    # ---- rejected metrics

    def rejected(self, family: str | None = None) -> tuple[str, ...]:
        """Rejected metric names of `family`, or of every family (first rejection first)."""
        if family is not None:
            return tuple(self._rejected.get(family, ()))
        names: dict[str, None] = {}
        for family_names in self._rejected.values():
            names.update(dict.fromkeys(family_names))
        return tuple(names)

    def rejection_report(self, families: Callable[[str], bool]) -> tuple[str, ...]:
        """The rejected metrics of the families `families` selects, one entry per metric name
        (first rejection first): the bare name when no selected family that asked for it got an
        answer with it (it was rejected wherever it was asked), else the name followed by the
        families that rejected it, e.g. "views (VIDEO/FEED)" or "views (IMAGE/STORY, VIDEO/FEED)".
        """
        rejected_by: dict[str, list[str]] = {}
        for family, names in self._rejected.items():
            if families(family):
                for name in names:
                    rejected_by.setdefault(name, []).append(family)
        report = []
        for name, rejecting in rejected_by.items():
            accepted = any(
                name in metrics and families(family) for family, metrics in self._accepted.items()
            )
            report.append(f"{name} ({', '.join(sorted(rejecting))})" if accepted else name)
        return tuple(report)

    def active_metrics(self, ask: Ask[Any]) -> list[str]:
        rejected = self._rejected.get(ask.family, [])
        return [m for m in ask.metrics if m not in rejected]

    # ---- plain reads

    def invalid(self, message: str) -> PlatformError:
        return invalid_response(self.platform.name, message)

    def get_object(self, url: str, params: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        response = self.session.request("GET", url, token=self._token, params=params)
        body = json_or_none(response)
        if not isinstance(body, dict):
            raise self.invalid(
                f"expected a JSON object from {safe_url(url)}: {excerpt(response.text)}"
            )
        return body

    def iter_pages(
        self, url: str, params: Mapping[str, Any], what: str
    ) -> Generator[Mapping[str, Any], None, None]:
        """Every page of a cursor-paged edge, following `paging.next` until it is absent, at
        most `max_pages` pages (more raises INVALID_RESPONSE instead of paging forever). The
        caller may stop early by closing the generator."""
        page_url: str = url
        page_params: Mapping[str, Any] | None = params
        for _ in capped_pages(self.platform.name, self.max_pages, f"{what} needs"):
            body = self.get_object(page_url, page_params)
            yield body
            next_url = self.next_url(body)
            if next_url is None:
                return
            page_url, page_params = next_url, None

    def next_url(self, body: Mapping[str, Any]) -> str | None:
        """The next page to fetch: `paging.next` without its token, or None when it is absent.

        The token is only ever sent to the configured Graph host: a `next` pointing elsewhere is
        an invalid response, not a URL to follow.
        """
        paging = body.get("paging")
        next_url = paging.get("next") if isinstance(paging, dict) else None
        if not next_url:
            return None
        if not isinstance(next_url, str):
            raise self.invalid("paging.next is not a string")
        absolute = urljoin(self.base_url, strip_access_token(next_url))
        target = urlsplit(absolute)
        if (target.scheme.lower(), target.netloc.lower()) != self._origin:
            raise self.invalid(
                f"paging.next points to {target.scheme}://{target.hostname}, not to the "
                "configured base_url; not sending the token there"
            )
        return absolute

    def data_list(self, body: Mapping[str, Any], what: str) -> list[Any]:
        data = body.get("data")
        if not isinstance(data, list):
            raise self.invalid(f"{what} reply without a data list: {excerpt(json.dumps(body))}")
        return data

    # ---- batches

    def post_batch(self, relative_urls: Sequence[str]) -> list[Any]:
        """One `POST /` with `batch=[...]` GET items; the raw entries, in order."""
        items = [{"method": "GET", "relative_url": url} for url in relative_urls]
        response = self.session.request(
            "POST",
            f"{self.api_root}/",
            token=self._token,
            data={"batch": json.dumps(items, separators=(",", ":")), "include_headers": "false"},
        )
        entries = json_or_none(response)
        if not isinstance(entries, list) or len(entries) != len(items):
            raise self.invalid(
                f"batch reply is not a list of {len(items)} entries: {excerpt(response.text)}"
            )
        return entries

    def run(self, asks: Sequence[Ask[T]]) -> dict[Hashable, T | PlatformError]:
        """Every ask answered, in ceil(n / batch_size) calls in the normal path.

        Returns, per key, the parsed record or a PERMANENT_OBJECT error of that item (deleted
        object, media before business conversion, not enough viewers: the caller decides).
        `null` and transient items are asked again, at most `retry.max_attempts` rounds with
        backoff; an invalid metric is pinned down and dropped, then the items that failed on it
        are asked again without it. Credential, config and invalid-response errors raise.
        """
        results: dict[Hashable, Any] = {}
        for offset in range(0, len(asks), self.batch_size):
            results.update(self._run_chunk(asks[offset : offset + self.batch_size]))
        return results

    def _run_chunk(self, asks: Sequence[Ask[Any]]) -> dict[Hashable, Any]:
        done: dict[Hashable, Any] = {}
        pending = list(asks)
        item_retries = 0
        while pending:
            sendable: list[Ask[Any]] = []
            for ask in pending:
                if ask.metrics_required and ask.metrics and not self.active_metrics(ask):
                    done[ask.key] = ask.parse({})  # every metric rejected: nothing to ask
                else:
                    sendable.append(ask)
            if not sendable:
                break
            outcomes = self._send(sendable)
            result = self._sort(sendable, outcomes)
            done.update(result.done)
            if result.invalid_metric is not None:
                self._reject_invalid(result.invalid_metric, result.metric_failed)
                pending = result.metric_failed + result.retry
                continue
            if result.retry and result.last_transient is not None:
                if item_retries + 1 >= self.session.retry.max_attempts:
                    raise result.last_transient
                self.session.wait_before_retry(item_retries, result.last_transient)
                item_retries += 1
            pending = result.retry
        return done

    def _sort(self, asks: Sequence[Ask[Any]], outcomes: Sequence[_Outcome]) -> _Round:
        result = _Round()
        for ask, outcome in zip(asks, outcomes, strict=True):
            if isinstance(outcome, InvalidMetricError):
                result.invalid_metric = outcome
                result.metric_failed.append(ask)
            elif outcome is None or (
                isinstance(outcome, PlatformError) and outcome.error_class is ErrorClass.TRANSIENT
            ):
                result.retry.append(ask)
                result.last_transient = outcome or self._not_processed(ask.key)
            elif isinstance(outcome, PlatformError):
                if outcome.error_class is not ErrorClass.PERMANENT_OBJECT:
                    raise outcome  # credential/config errors stop the integration at once
                result.done[ask.key] = outcome
            else:
                result.done[ask.key] = outcome
                if ask.metrics:
                    self._accepted.setdefault(ask.family, set()).update(self.active_metrics(ask))
        return result

    def _send(self, asks: Sequence[Ask[Any]]) -> list[_Outcome]:
        """One batch call for `asks`. A top-level invalid-metric error (a server that is not
        batch aware) counts for every item."""
        urls = [ask.url(self.active_metrics(ask)) for ask in asks]
        try:
            entries = self.post_batch(urls)
        except InvalidMetricError as error:
            return [error] * len(asks)
        return [self.parse_entry(ask, entry) for ask, entry in zip(asks, entries, strict=True)]

    def parse_entry(self, ask: Ask[Any], entry: Any) -> _Outcome:
        if entry is None:
            return None
        if not isinstance(entry, dict):
            raise self.invalid(f"batch entry for {ask.key} is not an object")
        status = as_int(entry.get("code"))
        raw_body = entry.get("body")
        try:
            body = json.loads(raw_body) if isinstance(raw_body, str) else raw_body
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return classify_graph_error(body["error"], platform=self.platform, http_status=status)
        if status == 200 and isinstance(body, dict):
            return ask.parse(body)
        error_class = (
            ErrorClass.TRANSIENT
            if status is not None and status >= 500
            else ErrorClass.INVALID_RESPONSE
        )
        return PlatformError(
            error_class,
            redact(f"batch item for {ask.key}: HTTP {status}: {excerpt(str(raw_body))}"),
            platform=self.platform.name,
            code=f"http_{status}",
            http_status=status,
        )

    def _not_processed(self, key: Hashable) -> PlatformError:
        return PlatformError(
            ErrorClass.TRANSIENT,
            f"batch item for {key} was not processed (null)",
            platform=self.platform.name,
            code="batch_null",
        )

    def _reject_invalid(self, error: InvalidMetricError, failed: Sequence[Ask[Any]]) -> None:
        """Find which metrics Graph rejects for each family that failed on one, and drop them
        for that family only.

        Graph's message ("(#100) The value must be a valid insights metric") does not reliably
        name the culprit, so one item of each failing family is re-asked once per metric, the
        probes of every family in ONE batch call (more only past Graph's 50 items per call). A
        family whose item turns out to be gone is probed again with its next candidate (at most
        3). If a family's rejection cannot be blamed on a metric, the original error is raised
        rather than looping.
        """
        by_family: dict[str, list[Ask[Any]]] = {}
        for ask in failed:
            by_family.setdefault(ask.family, []).append(ask)
        last_transient: PlatformError | None = None
        for attempt in range(_PROBE_CANDIDATES):
            probes: list[tuple[str, Ask[Any], str]] = []
            for family, candidates in by_family.items():
                if attempt >= len(candidates):
                    raise last_transient or error  # no item of the family left to probe
                metrics = self.active_metrics(candidates[attempt])
                if not metrics:
                    raise error
                probes.extend((family, candidates[attempt], metric) for metric in metrics)
            outcomes = self._probe(probes)
            unresolved: dict[str, list[Ask[Any]]] = {}
            for family, candidates in by_family.items():
                mine = [
                    (metric, outcome)
                    for (probed, _, metric), outcome in zip(probes, outcomes, strict=True)
                    if probed == family
                ]
                invalid = [m for m, outcome in mine if isinstance(outcome, InvalidMetricError)]
                if invalid:
                    self._drop(family, invalid)
                    continue
                for _, outcome in mine:
                    if isinstance(outcome, PlatformError):
                        if outcome.error_class in (
                            ErrorClass.PERMANENT_CREDENTIAL,
                            ErrorClass.PERMANENT_CONFIG,
                        ):
                            raise outcome
                        if outcome.error_class is ErrorClass.TRANSIENT:
                            last_transient = outcome
                    elif outcome is None:
                        last_transient = self._not_processed(candidates[attempt].key)
                if all(not isinstance(o, PlatformError) and o is not None for _, o in mine):
                    raise last_transient or error  # every metric works on its own: no culprit
                unresolved[family] = candidates
            if not unresolved:
                return
            by_family = unresolved
        raise last_transient or error

    def _probe(self, probes: Sequence[tuple[str, Ask[Any], str]]) -> list[_Outcome]:
        """The one-metric reads of `probes` (family, ask, metric), as few calls as Graph allows
        (`GRAPH_BATCH_LIMIT` items each; a probe is small, so `batch_size` does not split it)."""
        outcomes: list[_Outcome] = []
        for offset in range(0, len(probes), GRAPH_BATCH_LIMIT):
            chunk = probes[offset : offset + GRAPH_BATCH_LIMIT]
            entries = self.post_batch([ask.probe(metric) for _, ask, metric in chunk])
            outcomes.extend(
                self.parse_entry(ask, entry)
                for (_, ask, _), entry in zip(chunk, entries, strict=True)
            )
        return outcomes

    def _drop(self, family: str, invalid: Sequence[str]) -> None:
        rejected = self._rejected.setdefault(family, [])
        rejected.extend(m for m in invalid if m not in rejected)
        logger.warning(
            "%s rejected insights metrics %s for %s as invalid or deprecated; no longer asked for "
            "%s by this client (one run), still asked for every other kind of object",
            self.platform.name,
            ", ".join(invalid),
            family or "its objects",
            family or "them",
        )


# ---- the account itself (verify)

_NODE_NAMES = {"Page": "Facebook Page", "IGUser": "Instagram account", "User": "Facebook user"}
_NONEXISTING_FIELD = re.compile(r"nonexisting field \([^)]*\) on node type \((?P<node>[^)]+)\)")


def read_account_node(
    api: GraphApi, account_id: str, fields: str, *, node_type: str, expected: str
) -> Mapping[str, Any]:
    """ONE `GET /{account_id}?fields=...` for `describe_account`.

    Graph answers a field the node does not have with code 100 "Tried accessing nonexisting field
    (f) on node type (T)": when T is not `node_type` (e.g. a Page id given as an Instagram
    account) that becomes PERMANENT_CONFIG "wrong_account_kind", naming what the id is and what
    `expected` id to give instead."""
    url = f"{api.api_root}/{quote(account_id, safe='')}"
    try:
        return api.get_object(url, {"fields": fields})
    except PlatformError as error:
        match = _NONEXISTING_FIELD.search(error.message)
        if match is None or match["node"] == node_type:
            raise
        raise PlatformError(
            ErrorClass.PERMANENT_CONFIG,
            f"{account_id} is the id of a {_NODE_NAMES.get(match['node'], match['node'])} "
            f"(Graph node type {match['node']}), not of a "
            f"{_NODE_NAMES.get(node_type, node_type)}: give {expected}",
            platform=api.platform.name,
            code="wrong_account_kind",
            http_status=error.http_status,
        ) from None


def text_field(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) and value else None
