"""Deterministic synthetic LinkedIn organizations, posts and statistics for the sandbox.

Pure functions of their arguments (plus a `SandboxConfig`), seeded with SHA-256 like
`sandbox.data`: the same organization and day always give the same posts, follower gains and
page views; the same post and day always give the same per-day statistics.

Post URNs are `urn:li:share:<n>` or `urn:li:ugcPost:<n>` with `n = "7" + day ordinal (7 digits)
+ index (3 digits) + organization id`, so a URN resolves back to its post without storage and
never collides between organizations.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from analytics_sandbox.data import DEFAULT_CONFIG, SandboxConfig
from analytics_sandbox.seeds import (
    day_count,
    hash_int,
    pick,
    spread_seconds,
    unit,
    utc_midnight,
)

ORG_URN_RE = re.compile(r"urn:li:organization:(?P<id>[1-9]\d{0,17})")
POST_URN_RE = re.compile(
    r"urn:li:(?P<kind>share|ugcPost):7(?P<day>\d{7})(?P<index>\d{3})(?P<org>\d+)"
)
DAY_MS = 86_400_000


class LiFormat(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    DOCUMENT = "document"
    ARTICLE = "article"
    MULTI_IMAGE = "multiImage"
    POLL = "poll"
    RESHARE = "reshare"


_FORMAT_WEIGHTS: tuple[tuple[LiFormat, int], ...] = (
    (LiFormat.TEXT, 18),
    (LiFormat.IMAGE, 24),
    (LiFormat.VIDEO, 12),
    (LiFormat.DOCUMENT, 8),
    (LiFormat.ARTICLE, 16),
    (LiFormat.MULTI_IMAGE, 10),
    (LiFormat.POLL, 4),
    (LiFormat.RESHARE, 8),
)

_SENTENCES: tuple[str, ...] = (
    "We are hiring: three new roles in our Berlin office",
    "Our Q3 results are out \\(and they look good\\)",
    "What we learned shipping 40 releases this year",
    "Meet the team behind our new analytics product",
    "Join our webinar on data quality next Thursday",
    "Five lessons from scaling customer support",
    "Thank you to everyone who visited our booth",
    "New case study: cutting reporting time by half",
    "Behind the scenes of our annual offsite",
    "We're proud to be named a top workplace",
)

_HASHTAGS: tuple[str, ...] = (
    "Hiring",
    "DataEngineering",
    "Analytics",
    "Leadership",
    "CustomerSuccess",
    "ProductUpdate",
    "Webinar",
    "Culture",
)


def to_ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


midnight = utc_midnight  # LinkedIn's day buckets start at 00:00 UTC


def twelve_months_before(now: dt.datetime) -> dt.datetime:
    """The oldest moment LinkedIn serves statistics for (a rolling 12 months)."""
    try:
        return now.replace(year=now.year - 1)
    except ValueError:  # 29 February
        return now.replace(year=now.year - 1, day=28)


# --- organizations -----------------------------------------------------------------------------


def org_exists(org_urn: str, config: SandboxConfig = DEFAULT_CONFIG) -> bool:
    """Every well-formed organization URN exists, unless `config.known_pages` lists the known
    ones (as URNs or as bare numeric ids)."""
    match = ORG_URN_RE.fullmatch(org_urn)
    if match is None:
        return False
    if config.known_pages is None:
        return True
    return org_urn in config.known_pages or match["id"] in config.known_pages


def org_id(org_urn: str) -> str:
    match = ORG_URN_RE.fullmatch(org_urn)
    if match is None:
        raise ValueError(f"not an organization URN: {org_urn!r}")
    return match["id"]


def follower_total(org_urn: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG) -> int:
    """The follower total on `day`: a base plus the sum of daily gains since 2024-01-01."""
    base = 2_000 + hash_int(config.seed, "li-followers", org_urn) % 80_000
    growth = 3 + hash_int(config.seed, "li-growth", org_urn) % 30
    return base + growth * max(0, (day - dt.date(2024, 1, 1)).days)


@dataclass(frozen=True)
class FollowerGain:
    organic: int
    paid: int


def follower_gain(
    org_urn: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG
) -> FollowerGain:
    seed = config.seed
    organic = hash_int(seed, "li-organic-gain", org_urn, day.isoformat()) % 60
    paid_draw = unit(seed, "li-paid", org_urn, day.isoformat())
    paid = 0 if paid_draw < 0.6 else hash_int(seed, "li-paid-gain", org_urn, day.isoformat()) % 12
    return FollowerGain(organic=organic, paid=paid)


def page_views(org_urn: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG) -> int:
    return hash_int(config.seed, "li-page-views", org_urn, day.isoformat()) % 900


# --- posts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiPost:
    org: str
    kind: str  # "share" or "ugcPost"
    day: dt.date  # UTC publication day
    index: int
    published_at: dt.datetime  # aware UTC, whole milliseconds
    created_at: dt.datetime  # before published_at; up to 20 h before for scheduled posts
    format: LiFormat
    commentary: str

    @property
    def number(self) -> str:
        return f"7{self.day.toordinal():07d}{self.index:03d}{org_id(self.org)}"

    @property
    def urn(self) -> str:
        return f"urn:li:{self.kind}:{self.number}"

    @property
    def last_modified_at(self) -> dt.datetime:
        return self.published_at


def post_count(org_urn: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG) -> int:
    return day_count(config.posts_per_day, config.seed, "li-count", org_urn, day.isoformat())


def posts_for_day(
    org_urn: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG
) -> list[LiPost]:
    """The organization's posts published on `day` (UTC), oldest first."""
    if not org_exists(org_urn, config):
        return []
    count = post_count(org_urn, day, config)
    seconds = spread_seconds(count, config.seed, "li-time", org_urn, day.isoformat())
    return [_build_post(org_urn, day, i, s, config) for i, s in enumerate(seconds)]


def _build_post(
    org_urn: str, day: dt.date, index: int, second: int, config: SandboxConfig
) -> LiPost:
    seed = config.seed
    key = f"{org_urn}|{day.isoformat()}|{index}"
    published = midnight(day) + dt.timedelta(seconds=second)
    if unit(seed, "li-scheduled", key) < 0.15:  # scheduled ahead: created hours before
        lead = dt.timedelta(minutes=30 + hash_int(seed, "li-lead", key) % (20 * 60))
    else:
        lead = dt.timedelta(seconds=1 + hash_int(seed, "li-lead", key) % 90)
    fmt = pick(_FORMAT_WEIGHTS, seed, "li-format", key)
    kind = "ugcPost" if fmt is LiFormat.VIDEO or unit(seed, "li-kind", key) < 0.3 else "share"
    return LiPost(
        org=org_urn,
        kind=kind,
        day=day,
        index=index,
        published_at=published,
        created_at=published - lead,
        format=fmt,
        commentary=_commentary(seed, key, fmt, org_urn),
    )


def _commentary(seed: str, key: str, fmt: LiFormat, org_urn: str) -> str:
    """LinkedIn "little text": hashtags as `{hashtag|\\#|Name}`, an occasional mention and plain
    escaped `\\#tag`, reserved characters escaped with a backslash."""
    if fmt is LiFormat.RESHARE and unit(seed, "li-empty", key) < 0.5:
        return ""  # a plain repost
    sentence = _SENTENCES[hash_int(seed, "li-sentence", key) % len(_SENTENCES)]
    tag_count = hash_int(seed, "li-tags", key) % 4
    tags = [_HASHTAGS[hash_int(seed, "li-tag", key, i) % len(_HASHTAGS)] for i in range(tag_count)]
    if tag_count >= 2 and unit(seed, "li-dup", key) < 0.4:
        tags[-1] = tags[0].upper()
    words = [f"{{hashtag|\\#|{tag}}}" for tag in tags]
    text = f"{sentence}. {' '.join(words)}".rstrip()
    if unit(seed, "li-mention", key) < 0.2:
        text = f"With @[Sandbox Partner](urn:li:organization:{org_id(org_urn)}9) — {text}"
    if unit(seed, "li-plain-tag", key) < 0.15:
        text += " \\#Sandbox"
    return text


def content_of(post: LiPost) -> dict[str, Any] | None:
    """The Posts API `content` of a post (None: text posts and reposts carry none)."""
    ref = post.number[-12:]
    if post.format is LiFormat.IMAGE:
        return {"media": {"id": f"urn:li:image:C4D22AQ{ref}", "altText": "Team photo"}}
    if post.format is LiFormat.VIDEO:
        return {"media": {"id": f"urn:li:video:C5F10AQ{ref}", "title": "Product walkthrough"}}
    if post.format is LiFormat.DOCUMENT:
        return {"media": {"id": f"urn:li:document:D4D10AQ{ref}", "title": "Annual report.pdf"}}
    if post.format is LiFormat.ARTICLE:
        return {
            "article": {
                "source": f"https://example.com/blog/post-{ref}",
                "title": "Read the full story on our blog",
                "description": "Everything we learned this quarter, in one place.",
                "thumbnail": f"urn:li:image:C4E10AQ{ref}",
            }
        }
    if post.format is LiFormat.MULTI_IMAGE:
        size = 2 + int(ref) % 5
        return {
            "multiImage": {
                "images": [
                    {"id": f"urn:li:image:C4D22AQ{ref}{i}", "altText": ""} for i in range(size)
                ]
            }
        }
    if post.format is LiFormat.POLL:
        return {
            "poll": {
                "question": "Which topic should our next webinar cover?",
                "options": [{"text": "Data quality"}, {"text": "Dashboards"}],
                "settings": {"duration": "THREE_DAYS", "voteSelectionType": "SINGLE_VOTE"},
            }
        }
    return None


def reshare_parent(post: LiPost) -> str | None:
    if post.format is not LiFormat.RESHARE:
        return None
    return f"urn:li:share:6{post.number[1:]}"


def decode_post_urn(urn: str, config: SandboxConfig = DEFAULT_CONFIG) -> LiPost | None:
    """The post behind a share/ugcPost URN, or None when no such post was ever published."""
    match = POST_URN_RE.fullmatch(urn)
    if match is None:
        return None
    org = f"urn:li:organization:{match['org']}"
    if not org_exists(org, config):
        return None
    try:
        day = dt.date.fromordinal(int(match["day"]))
    except ValueError:
        return None
    posts = posts_for_day(org, day, config)
    index = int(match["index"])
    if index >= len(posts) or posts[index].urn != urn:
        return None
    return posts[index]


def iter_posts_created_desc(
    org_urn: str, now: dt.datetime, config: SandboxConfig = DEFAULT_CONFIG
) -> Iterator[LiPost]:
    """Published posts (published_at <= now, within `history_days`), newest createdAt first.

    Streams day by day: a post published on day d was created after d - 1 day, so once day d
    has been generated every buffered post created at or after d's midnight is final.
    """
    buffer: list[LiPost] = []
    day = now.date()
    floor = now.date() - dt.timedelta(days=config.history_days)
    while day >= floor:
        buffer.extend(p for p in posts_for_day(org_urn, day, config) if p.published_at <= now)
        cutoff = midnight(day)
        ready = sorted(
            (p for p in buffer if p.created_at >= cutoff), key=_created_key, reverse=True
        )
        buffer = [p for p in buffer if p.created_at < cutoff]
        yield from ready
        day -= dt.timedelta(days=1)
    yield from sorted(buffer, key=_created_key, reverse=True)


def _created_key(post: LiPost) -> tuple[dt.datetime, str]:
    return (post.created_at, post.urn)


def count_posts(org_urn: str, now: dt.datetime, config: SandboxConfig = DEFAULT_CONFIG) -> int:
    """How many posts `iter_posts_created_desc` yields (for `paging.total`), cheaply."""
    if not org_exists(org_urn, config):
        return 0
    today = now.date()
    floor = today - dt.timedelta(days=config.history_days)
    total = sum(
        post_count(org_urn, floor + dt.timedelta(days=i), config)
        for i in range((today - floor).days)
    )
    return total + sum(1 for p in posts_for_day(org_urn, today, config) if p.published_at <= now)


# --- statistics --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareStats:
    """One `totalShareStatistics` object (a UTC day's values, or a sum of days)."""

    impressions: int
    unique_impressions: int
    clicks: int
    likes: int
    comments: int
    shares: int

    def to_json(self) -> dict[str, Any]:
        engaged = self.clicks + self.likes + self.comments + self.shares
        return {
            "uniqueImpressionsCount": self.unique_impressions,
            "shareCount": self.shares,
            "engagement": round(engaged / self.impressions, 6) if self.impressions else 0.0,
            "clickCount": self.clicks,
            "likeCount": self.likes,
            "impressionCount": self.impressions,
            "commentCount": self.comments,
        }

    def __add__(self, other: ShareStats) -> ShareStats:
        return ShareStats(
            self.impressions + other.impressions,
            self.unique_impressions + other.unique_impressions,
            self.clicks + other.clicks,
            self.likes + other.likes,
            self.comments + other.comments,
            self.shares + other.shares,
        )


ZERO = ShareStats(0, 0, 0, 0, 0, 0)

_FORMAT_REACH: dict[LiFormat, float] = {
    LiFormat.VIDEO: 1.6,
    LiFormat.DOCUMENT: 1.4,
    LiFormat.MULTI_IMAGE: 1.2,
    LiFormat.TEXT: 0.7,
    LiFormat.RESHARE: 0.5,
}


def post_day_stats(
    post: LiPost, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG
) -> ShareStats:
    """The post's statistics FOR `day` (not cumulative): most on the day it was published,
    halving every day after; zero before publication and once the post has gone quiet."""
    age = (day - post.day).days
    if age < 0:
        return ZERO
    seed, key = config.seed, post.urn
    total = (300 + hash_int(seed, "li-reach", key) % 8_000) * _FORMAT_REACH.get(post.format, 1.0)
    impressions = int(total * 0.5 ** (age + 1))
    unique = int(impressions * (0.55 + 0.35 * unit(seed, "li-unique", key)))
    no_clicks = unit(seed, "li-no-clicks", key) < 0.25
    clicks = 0 if no_clicks else int(impressions * 0.05 * unit(seed, "li-clicks", key, age))
    likes = int(impressions * 0.04 * unit(seed, "li-likes", key, age))
    comments = int(impressions * 0.008 * unit(seed, "li-comments", key, age))
    shares = int(impressions * 0.005 * unit(seed, "li-shares", key, age))
    return ShareStats(impressions, unique, clicks, likes, comments, shares)


def org_day_stats(org_urn: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG) -> ShareStats:
    """The organization's organic totals for `day` (all its posts together)."""
    seed, key = config.seed, f"{org_urn}|{day.isoformat()}"
    impressions = 200 + hash_int(seed, "li-org-impressions", key) % 20_000
    unique = int(impressions * (0.5 + 0.4 * unit(seed, "li-org-unique", key)))
    return ShareStats(
        impressions,
        unique,
        int(impressions * 0.03 * unit(seed, "li-org-clicks", key)),
        int(impressions * 0.04 * unit(seed, "li-org-likes", key)),
        int(impressions * 0.006 * unit(seed, "li-org-comments", key)),
        int(impressions * 0.004 * unit(seed, "li-org-shares", key)),
    )
