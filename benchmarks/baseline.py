"""The OLD design, re-implemented for comparison: what issue 4 says the replaced systems did.

- one HTTP request per post for its metrics (`GET /{version}/{post_id}?fields=...insights...`),
  plus one per reel for its `video_insights`; one request per listing page; two per account day
  (page insights, then the followers snapshot when it is recordable);
- one row per transaction: every row is its own `INSERT ... ON CONFLICT DO UPDATE` + COMMIT
  through SQLAlchemy, into the same warehouse tables the pipeline writes;
- strictly sequential: one integration, one day, one request at a time.

It talks to the same sandbox endpoints as `FacebookClient` (same fields, same metrics, the token
in the `Authorization` header only) and parses replies with the same parse functions, so the
rows it writes carry the same values; only the request and write patterns differ. It does NOT
add the fixed delays the old systems waited (that would only flatter the new design), retries
nothing (the benchmark sandbox has no faults) and records no ledger rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.ingest import day_bounds
from analytics_pipeline.platforms.facebook import (
    POST_FIELDS,
    FacebookSettings,
    merge_reel_metrics,
    parse_page_insights,
    parse_page_snapshot,
    parse_post,
    parse_post_metrics,
    parse_reel_metrics,
    reel_video_id,
)
from analytics_pipeline.platforms.graph import day_start, unix
from analytics_pipeline.records import METRIC_FIELDS, ContentItem, ContentMetrics, ContentPartition
from analytics_pipeline.warehouse._sql import dialect_insert
from analytics_pipeline.warehouse.tables import (
    ACCOUNT_METRICS_KEY,
    CONTENT_KEY,
    METRICS_KEY,
    account_metrics_daily,
    content_items,
    content_metrics_daily,
)

ITEM_FIELDS = (
    "shares,comments.summary(true).limit(0),permalink_url,status_type,"
    "attachments{media_type,type,target{id}}"
)
MAX_LISTING_PAGES = 200  # bounded like the real client


class BaselineError(RuntimeError):
    """A request of the baseline failed (the message never carries the token)."""


@dataclass(frozen=True)
class BaselineIntegration:
    organization_id: str
    integration_id: str
    page_id: str


@dataclass
class BaselineStats:
    requests: int = 0
    listing_requests: int = 0
    metrics_requests: int = 0
    account_requests: int = 0
    rows_committed: int = 0
    metrics_requests_by_day: dict[str, int] = field(default_factory=dict)


class Baseline:
    """Sequential per-post ingestion with one commit per row (see the module docstring)."""

    def __init__(
        self,
        engine: sa.Engine,
        settings: FacebookSettings,
        token: str,
        *,
        lookback_days: int,
        recordable_days: Collection[dt.date],
        partitions_start: dt.date,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.lookback_days = lookback_days
        # The days whose lifetime totals may be stamped: the pipeline's rule (the day they are
        # observed), so that both designs write the same rows.
        self.recordable_days = frozenset(recordable_days)
        self.partitions_start = partitions_start
        self.stats = BaselineStats()
        self._http = requests.Session()
        self._http.trust_env = False  # 127.0.0.1 only: never through a proxy
        self._http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self._http.close()

    # -- driving ---------------------------------------------------------------------------

    def run(self, integration: BaselineIntegration, days: Sequence[dt.date]) -> None:
        """Metadata of every day, then metrics of every day, then account metrics (as the
        pipeline orders one integration's work)."""
        for day in days:
            self._metadata_day(integration, day)
        for day in days:
            if day in self.recordable_days:
                self._metrics_day(integration, day)
        for day in days:
            self._account_day(integration, day)

    # -- the three kinds of work -------------------------------------------------------------

    def _metadata_day(self, integration: BaselineIntegration, day: dt.date) -> None:
        start, end = day_bounds(day)
        params = {
            "fields": POST_FIELDS,
            "since": str(unix(start)),
            "until": str(unix(end)),
            "limit": str(self.settings.page_size),
        }
        url: str | None = f"{self.settings.api_root}/{integration.page_id}/posts"
        for _ in range(MAX_LISTING_PAGES):
            if url is None:
                return
            body = self._get(url, params, "listing")
            params = {}
            for raw in body.get("data") or []:
                item = parse_post(raw)
                if start <= item.published_at < end:
                    self._write_content(integration, item)
            url = _next_without_token(body)
        raise BaselineError(f"more than {MAX_LISTING_PAGES} listing pages")

    def _metrics_day(self, integration: BaselineIntegration, day: dt.date) -> None:
        window_start = max(day - dt.timedelta(days=self.lookback_days - 1), self.partitions_start)
        with self.engine.connect() as conn:
            ids = wh.content_ids_published_between(
                conn,
                organization_id=integration.organization_id,
                integration_id=integration.integration_id,
                start=day_bounds(window_start)[0],
                end=day_bounds(day)[1],
            )
        before = self.stats.metrics_requests
        for post_id in ids:
            self._write_metrics(integration, day, self._post_metrics(post_id))
        key = ContentPartition(day, integration.integration_id).key
        self.stats.metrics_requests_by_day[key] = self.stats.metrics_requests - before

    def _post_metrics(self, post_id: str) -> ContentMetrics:
        root = self.settings.api_root
        fields = f"{ITEM_FIELDS},insights.metric({','.join(self.settings.post_metrics)})"
        body = self._get(f"{root}/{post_id}", {"fields": fields}, "metrics")
        metrics = parse_post_metrics(post_id, body, self.settings.post_metrics)
        video_id = reel_video_id(body)
        if video_id is None or not self.settings.reel_metrics:
            return metrics
        reel_params = {"metric": ",".join(self.settings.reel_metrics)}
        reel_body = self._get(f"{root}/{video_id}/video_insights", reel_params, "metrics")
        reel = parse_reel_metrics(post_id, reel_body, self.settings.reel_metrics)
        return merge_reel_metrics(metrics, reel)

    def _account_day(self, integration: BaselineIntegration, day: dt.date) -> None:
        root, page = self.settings.api_root, integration.page_id
        params = {
            "metric": ",".join(self.settings.page_metrics),
            "period": "day",
            "since": str(unix(day_start(day))),
            "until": str(unix(day_start(day + dt.timedelta(days=2)))),
        }
        body = self._get(f"{root}/{page}/insights", params, "account")
        columns = parse_page_insights(body, day, self.settings.page_metrics)
        followers = None
        if day in self.recordable_days:
            snap = self._get(f"{root}/{page}", {"fields": "followers_count,fan_count"}, "account")
            followers = parse_page_snapshot(snap)
        self._write_account(integration, day, followers, columns)

    # -- HTTP ------------------------------------------------------------------------------------

    def _get(self, url: str, params: Mapping[str, str], kind: str) -> dict[str, Any]:
        self.stats.requests += 1
        setattr(self.stats, f"{kind}_requests", getattr(self.stats, f"{kind}_requests") + 1)
        response = self._http.get(url, params=dict(params), timeout=(5, 30))
        if response.status_code != 200:
            path = urlsplit(url).path
            raise BaselineError(f"GET {path} answered HTTP {response.status_code}")
        body = response.json()
        if not isinstance(body, dict):
            raise BaselineError(f"GET {urlsplit(url).path} answered a non-object")
        return body

    # -- one row, one transaction ------------------------------------------------------------

    def _upsert_one(self, table: sa.Table, key: Sequence[str], row: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            insert = dialect_insert(conn, table).values(**row)
            update = {name: insert.excluded[name] for name in row if name not in key}
            conn.execute(insert.on_conflict_do_update(index_elements=list(key), set_=update))
        self.stats.rows_committed += 1

    def _write_content(self, integration: BaselineIntegration, item: ContentItem) -> None:
        now = dt.datetime.now(dt.UTC)
        row = {
            "organization_id": integration.organization_id,
            "integration_id": integration.integration_id,
            "platform": "facebook",
            "external_content_id": item.external_content_id,
            "format": item.format.value,
            "caption": item.caption,
            "hashtags": list(item.hashtags),
            "permalink": item.permalink,
            "published_at": item.published_at,
            "first_seen_at": now,
            "updated_at": now,
            "reference_type": item.reference_type,
        }
        self._upsert_one(content_items, CONTENT_KEY, row)

    def _write_metrics(
        self, integration: BaselineIntegration, day: dt.date, metrics: ContentMetrics
    ) -> None:
        row: dict[str, Any] = {
            "organization_id": integration.organization_id,
            "integration_id": integration.integration_id,
            "external_content_id": metrics.external_content_id,
            "metric_date": day,
            "value_kind": metrics.value_kind.value,
            **{name: getattr(metrics, name) for name in METRIC_FIELDS},
            "observed_at": dt.datetime.now(dt.UTC),
        }
        self._upsert_one(content_metrics_daily, METRICS_KEY, row)

    def _write_account(
        self,
        integration: BaselineIntegration,
        day: dt.date,
        followers: int | None,
        columns: Mapping[str, int | None],
    ) -> None:
        now = dt.datetime.now(dt.UTC)
        row: dict[str, Any] = {
            "organization_id": integration.organization_id,
            "integration_id": integration.integration_id,
            "metric_date": day,
            **dict(columns),
            "followers_total": followers,
            "followers_observed_at": now if followers is not None else None,
            "observed_at": now,
        }
        self._upsert_one(account_metrics_daily, ACCOUNT_METRICS_KEY, row)


def _next_without_token(body: Mapping[str, Any]) -> str | None:
    paging = body.get("paging")
    next_url = paging.get("next") if isinstance(paging, dict) else None
    if not isinstance(next_url, str):
        return None
    parts = urlsplit(next_url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "access_token"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def iter_days(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    day = start
    while day <= end:
        yield day
        day += dt.timedelta(days=1)
