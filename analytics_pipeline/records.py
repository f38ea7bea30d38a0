"""Records and names shared by the platform clients, the warehouse and the Dagster wiring.

This module is the one list of platforms, integration statuses, asset names, content formats,
error classes and metric columns, and it holds the frozen records that clients parse replies
into and the warehouse stores. It imports nothing of the project, so `platforms/` and
`warehouse/` can both depend on it without depending on each other.

Partitions are `ContentPartition` objects everywhere in the code; their Dagster key text
("<YYYY-MM-DD>|<integration_id>", dimensions sorted by name) is made and read only here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum


class Platform(StrEnum):
    """The platforms a tracked integration can be on."""

    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    LINKEDIN = "linkedin"
    X = "x"


PLATFORMS: tuple[str, ...] = tuple(p.value for p in Platform)


class AccountIdError(ValueError):
    """An `external_account_id` that is not in its platform's form (see `check_account_id`)."""


_NUMERIC_ID = re.compile(r"[1-9][0-9]{0,19}")
_LINKEDIN_ORG_URN = re.compile(r"urn:li:organization:[1-9][0-9]{0,18}")

# platform -> (pattern, what the id is, an example of the expected form)
_ACCOUNT_ID_FORMS: dict[str, tuple[re.Pattern[str], str, str]] = {
    "facebook": (_NUMERIC_ID, "the numeric Facebook Page id", "104123456789012"),
    "instagram": (
        _NUMERIC_ID,
        "the numeric Instagram professional account id (the page's "
        "instagram_business_account id, not the @username)",
        "17841400000000001",
    ),
    "linkedin": (
        _LINKEDIN_ORG_URN,
        "a LinkedIn organization URN urn:li:organization:<number>",
        "urn:li:organization:2414183",
    ),
    "x": (_NUMERIC_ID, "the numeric X user id (not the @handle)", "2244994945"),
}


def check_account_id(platform: str, account_id: str) -> str:
    """`account_id` if it has the form `platform` identifies accounts by, else AccountIdError
    (one line, with the expected form and an example). A long refused value is not echoed."""
    pattern, what, example = _ACCOUNT_ID_FORMS[platform]
    if isinstance(account_id, str) and pattern.fullmatch(account_id):
        return account_id
    text = str(account_id)
    shown = repr(text) if len(text) <= 40 else f"a value of {len(text)} characters"
    raise AccountIdError(f"Invalid {platform} account id {shown}: expected {what}, e.g. {example}.")


class IntegrationStatus(StrEnum):
    """`tracked_integrations.status`."""

    ACTIVE = "active"
    PAUSED = "paused"
    NEEDS_REAUTH = "needs_reauth"


INTEGRATION_STATUSES: tuple[str, ...] = tuple(s.value for s in IntegrationStatus)


class AssetName(StrEnum):
    """The ingestion assets (their Dagster asset keys and the `asset` column of the ledger)."""

    CONTENT_METADATA = "content_metadata"
    CONTENT_DAILY_METRICS = "content_daily_metrics"
    ACCOUNT_DAILY_METRICS = "account_daily_metrics"


class ContentFormat(StrEnum):
    """A small closed set of content formats shared by every platform."""

    POST = "POST"  # an image/photo post or a plain feed post with an image
    REEL = "REEL"
    VIDEO = "VIDEO"
    CAROUSEL = "CAROUSEL"
    STORY = "STORY"
    LINK = "LINK"
    TEXT = "TEXT"


class ErrorClass(StrEnum):
    TRANSIENT = "transient"
    PERMANENT_CREDENTIAL = "permanent_credential"
    PERMANENT_OBJECT = "permanent_object"
    # Our configuration is wrong for every account of the platform (e.g. a sunset API version):
    # stop, say which setting to change, do not mark the integration needs_reauth.
    PERMANENT_CONFIG = "permanent_config"
    INVALID_RESPONSE = "invalid_response"
    # Failure rows only (ingestion_failures, migration 0004), never a PlatformError's class:
    # a partition a stopped run did not get to, and a metric the platform rejected or
    # deprecated (one row per integration x metric x run; the partition landed without it).
    STOPPED = "stopped"
    REJECTED_METRIC = "rejected_metric"


class ValueKind(StrEnum):
    """What a metrics row's numbers mean."""

    LIFETIME_SNAPSHOT = "lifetime_snapshot"  # cumulative total observed on metric_date
    DAILY = "daily"  # the platform's own value for that day


class TotalsBasis(StrEnum):
    """How `social_media_report` gets an item's latest totals (kpis/social_report.py)."""

    LATEST_SNAPSHOT = "latest_snapshot"  # the newest lifetime snapshot's values
    SUM_OF_DAILY = "sum_of_daily"  # the sum of the platform's per-day values


# `social_media_report.caption_excerpt`: the caption's first characters.
CAPTION_EXCERPT_CHARS = 200


METRIC_FIELDS: tuple[str, ...] = (
    "impressions",
    "reach",
    "views",
    "reactions",
    "likes",
    "comments",
    "shares",
    "clicks",
    "saves",
    "video_views",
)


# What a content item answers or re-shares (`ContentItem.reference_type`); None = original content.
REFERENCE_TYPES: tuple[str, ...] = ("quote", "reply", "reshare")


@dataclass(frozen=True)
class ContentItem:
    external_content_id: str
    format: ContentFormat
    published_at: dt.datetime  # timezone-aware UTC
    caption: str | None = None
    hashtags: tuple[str, ...] = ()
    permalink: str | None = None
    # What the item answers or re-shares, when it is not an original: "quote", "reply",
    # "reshare". None for original content.
    reference_type: str | None = None


@dataclass(frozen=True)
class ContentMetrics:
    """Metrics of one content item. None = the platform did not say; 0 = it said zero."""

    external_content_id: str
    value_kind: ValueKind
    impressions: int | None = None
    reach: int | None = None
    views: int | None = None
    reactions: int | None = None
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    clicks: int | None = None
    saves: int | None = None
    video_views: int | None = None

    def null_count(self) -> int:
        return sum(getattr(self, name) is None for name in METRIC_FIELDS)


ACCOUNT_METRIC_FIELDS: tuple[str, ...] = (
    "followers_total",
    "new_followers",
    "profile_views",
    "reach",
    "impressions",
    "views",
    "website_clicks",
)


@dataclass(frozen=True)
class AccountMetrics:
    """Account-level numbers for one UTC day. None = the platform did not say (or cannot for
    that day); 0 = it said zero.

    `followers_total` is a SNAPSHOT of the current total (platforms cannot tell it for a past
    day): clients fill it only when asked with `include_snapshot=True`. Every other field is the
    platform's own value FOR that day (e.g. Facebook page insights `period=day`, LinkedIn
    follower gains with `timeIntervals`), which can be backfilled as far as the platform allows.
    """

    followers_total: int | None = None
    new_followers: int | None = None
    profile_views: int | None = None
    reach: int | None = None
    impressions: int | None = None
    views: int | None = None
    website_clicks: int | None = None
    # Metric names the platform rejected as invalid/deprecated (the rest still landed).
    rejected_metrics: tuple[str, ...] = ()

    def null_count(self) -> int:
        return sum(getattr(self, name) is None for name in ACCOUNT_METRIC_FIELDS)


@dataclass(frozen=True)
class SkippedObject:
    """A content item the platform refused for a reason that concerns only that item."""

    external_content_id: str
    code: str
    message: str


@dataclass(frozen=True)
class MetricsBatch:
    metrics: tuple[ContentMetrics, ...]
    skipped: tuple[SkippedObject, ...] = ()
    # Metric names the platform rejected as invalid/deprecated: the rest was still fetched. A
    # metric is dropped only for the kind of object that rejected it (Instagram media type,
    # Facebook post item or reel); when another kind answered it, the entry names the kinds that
    # rejected it: "views (VIDEO/FEED)".
    rejected_metrics: tuple[str, ...] = ()


# --- partitions -------------------------------------------------------------------------------


class PartitionKeyError(ValueError):
    """A partition key that is not "<YYYY-MM-DD>|<integration_id>"."""


@dataclass(frozen=True, order=True)
class ContentPartition:
    """One (UTC day, tracked integration) partition of the ingestion assets."""

    day: dt.date
    integration_id: str

    @property
    def key(self) -> str:
        """The Dagster multi-partition key ("date" and "integration" sorted by name)."""
        return f"{self.day.isoformat()}|{self.integration_id}"

    @classmethod
    def parse(cls, key: str) -> ContentPartition:
        day_text, sep, integration_id = key.partition("|")
        if not sep or not integration_id or "|" in integration_id:
            raise PartitionKeyError(
                f"Partition key {key!r} is not of the form 'YYYY-MM-DD|<integration_id>'."
            )
        try:
            day = dt.date.fromisoformat(day_text)
        except ValueError:
            raise PartitionKeyError(f"Partition key {key!r} does not start with a date.") from None
        return cls(day, integration_id)


def date_range(start: dt.date, end: dt.date) -> Iterator[dt.date]:
    """Days from start to end, both inclusive."""
    day = start
    while day <= end:
        yield day
        day += dt.timedelta(days=1)
