"""Deterministic synthetic Instagram professional accounts for the sandbox.

Pure functions of (account, day) and (media, observation time), SHA-256 seeded like
`sandbox.data`, so two servers answer byte for byte the same. Any all-digit id starting with
"1784" (at least 8 digits) is an account unless `SandboxConfig.known_pages` lists the known
accounts.

Media ids are all digits and resolve back to their media without storage:

    "18" + kind (0 feed/reel, 1 story, 2 carousel child) + day ordinal (7) + index (3)
         + child number (2, 00 unless a child) + the account id without its "1784" prefix

Every day has `posts_per_day` feed items (images, carousels of 2-6 children, feed videos,
reels) and 0-3 stories. Stories are listed only while live (24 h). Lifetime insights grow with
age; a story's grow by the hour. About one story in seven is seen by fewer than 5 accounts
(Graph then answers "(#10) Not enough viewers").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from analytics_sandbox.data import (
    DEFAULT_CONFIG,
    IG_USER_PREFIX,
    SandboxConfig,
    is_ig_user_id,
    pacific_day_end,
    synthetic_caption,
)
from analytics_sandbox.seeds import (
    day_count,
    growth_fraction,
    hash_int,
    pick,
    spread_seconds,
    unit,
    utc_midnight,
)

STORY_LIFETIME = dt.timedelta(hours=24)
_FEED_READY = dt.timedelta(hours=1)  # insights of a new post or reel: empty data before this
_STORY_READY = dt.timedelta(minutes=15)
_MAX_STORIES = 3


class Kind(StrEnum):
    """What the id encodes (first digit after "18")."""

    MEDIA = "0"
    STORY = "1"
    CHILD = "2"


class Shape(StrEnum):
    IMAGE = "image"
    CAROUSEL = "carousel"
    VIDEO = "video"  # a feed video (media_product_type FEED)
    REEL = "reel"
    STORY_IMAGE = "story_image"
    STORY_VIDEO = "story_video"


_FEED_WEIGHTS: tuple[tuple[Shape, int], ...] = (
    (Shape.IMAGE, 35),
    (Shape.CAROUSEL, 20),
    (Shape.VIDEO, 5),
    (Shape.REEL, 40),
)


def account_exists(user_id: str, config: SandboxConfig = DEFAULT_CONFIG) -> bool:
    if not is_ig_user_id(user_id):
        return False
    return config.known_pages is None or user_id in config.known_pages


def username(user_id: str) -> str:
    return f"sandbox.ig.{user_id[-6:]}"


def followers(user_id: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG) -> int:
    """The current follower total on `day` (a snapshot value), drifting upward."""
    base = 500 + hash_int(config.seed, "ig-followers", user_id) % 80_000
    growth = 1 + hash_int(config.seed, "ig-growth", user_id) % 60
    return base + growth * (day.toordinal() - dt.date(2024, 1, 1).toordinal())


@dataclass(frozen=True)
class IgMedia:
    user_id: str
    day: dt.date
    index: int
    kind: Kind
    shape: Shape
    timestamp: dt.datetime  # aware UTC, whole seconds
    caption: str | None
    child: int = 0  # 1.. for a carousel child
    child_count: int = 0  # for a carousel

    @property
    def id(self) -> str:
        suffix = self.user_id[len(IG_USER_PREFIX) :]
        return (
            f"18{self.kind.value}{self.day.toordinal():07d}{self.index:03d}{self.child:02d}{suffix}"
        )

    @property
    def media_type(self) -> str:
        return {
            Shape.IMAGE: "IMAGE",
            Shape.CAROUSEL: "CAROUSEL_ALBUM",
            Shape.VIDEO: "VIDEO",
            Shape.REEL: "VIDEO",
            Shape.STORY_IMAGE: "IMAGE",
            Shape.STORY_VIDEO: "VIDEO",
        }[self.shape]

    @property
    def product_type(self) -> str:
        if self.kind is Kind.STORY:
            return "STORY"
        return "REELS" if self.shape is Shape.REEL else "FEED"

    @property
    def shortcode(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
        number = hash_int("shortcode", self.id)
        return "".join(alphabet[(number >> (6 * i)) % 64] for i in range(11))

    @property
    def permalink(self) -> str:
        if self.kind is Kind.STORY:
            return f"https://www.instagram.com/stories/{username(self.user_id)}/{self.id}/"
        path = "reel" if self.shape is Shape.REEL else "p"
        return f"https://www.instagram.com/{path}/{self.shortcode}/"

    def children(self) -> tuple[IgMedia, ...]:
        if self.shape is not Shape.CAROUSEL:
            return ()
        return tuple(
            IgMedia(
                self.user_id,
                self.day,
                self.index,
                Kind.CHILD,
                Shape.VIDEO if hash_int("child-shape", self.id, n) % 4 == 0 else Shape.IMAGE,
                self.timestamp,
                None,
                child=n,
            )
            for n in range(1, self.child_count + 1)
        )

    def sort_key(self) -> tuple[int, str]:
        """Listing order key: newest first means descending by this key."""
        return (int(self.timestamp.timestamp()), self.id)

    def is_live_story(self, now: dt.datetime) -> bool:
        return self.kind is Kind.STORY and self.timestamp <= now < self.timestamp + STORY_LIFETIME


# --- listing -----------------------------------------------------------------------------------


def media_for_day(
    user_id: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG
) -> list[IgMedia]:
    """Feed media and reels published on `day` (UTC), oldest first."""
    if not account_exists(user_id, config):
        return []
    key = f"ig|{user_id}|{day.isoformat()}"
    count = day_count(config.posts_per_day, config.seed, "ig-count", key)
    return _day_items(user_id, day, Kind.MEDIA, key, count, config)


def stories_for_day(
    user_id: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG
) -> list[IgMedia]:
    """Stories published on `day` (UTC), oldest first (listed only while live)."""
    if not account_exists(user_id, config):
        return []
    key = f"ig-story|{user_id}|{day.isoformat()}"
    count = hash_int(config.seed, "ig-story-count", key) % (_MAX_STORIES + 1)
    return _day_items(user_id, day, Kind.STORY, key, count, config)


def _day_items(
    user_id: str, day: dt.date, kind: Kind, key: str, count: int, config: SandboxConfig
) -> list[IgMedia]:
    """`count` items of `kind` spread over `day` (UTC), oldest first."""
    seconds = spread_seconds(count, config.seed, "time", key)
    return [
        _build(user_id, day, index, second, kind, config) for index, second in enumerate(seconds)
    ]


def _build(
    user_id: str, day: dt.date, index: int, second: int, kind: Kind, config: SandboxConfig
) -> IgMedia:
    timestamp = utc_midnight(day) + dt.timedelta(seconds=second)
    key = f"{user_id}|{day.isoformat()}|{index}|{kind.value}"
    if kind is Kind.STORY:
        shape = (
            Shape.STORY_VIDEO if unit(config.seed, "story-shape", key) < 0.4 else Shape.STORY_IMAGE
        )
        return IgMedia(user_id, day, index, kind, shape, timestamp, None)
    shape = pick(_FEED_WEIGHTS, config.seed, "ig-shape", key)
    caption = synthetic_caption(config.seed, f"ig|{key}", may_be_empty=shape is not Shape.CAROUSEL)
    children = 2 + hash_int(config.seed, "ig-album", key) % 5 if shape is Shape.CAROUSEL else 0
    return IgMedia(user_id, day, index, kind, shape, timestamp, caption, child_count=children)


def decode_media_id(media_id: str, config: SandboxConfig = DEFAULT_CONFIG) -> IgMedia | None:
    """The media behind an id, or None when no such media was ever published."""
    if len(media_id) < 19 or not media_id.isdigit() or not media_id.startswith("18"):
        return None
    try:
        kind = Kind(media_id[2])
        day = dt.date.fromordinal(int(media_id[3:10]))
    except ValueError:
        return None
    index, child = int(media_id[10:13]), int(media_id[13:15])
    user_id = IG_USER_PREFIX + media_id[15:]
    if not account_exists(user_id, config):
        return None
    if kind is Kind.STORY:
        found = stories_for_day(user_id, day, config)
    else:
        found = media_for_day(user_id, day, config)
    if index >= len(found):
        return None
    media = found[index]
    if kind is Kind.CHILD:
        children = media.children()
        media = children[child - 1] if 1 <= child <= len(children) else media
    return media if media.id == media_id else None


def media_desc(
    user_id: str,
    *,
    now: dt.datetime,
    config: SandboxConfig = DEFAULT_CONFIG,
    before_key: tuple[int, str] | None = None,
) -> Iterator[IgMedia]:
    """`/{ig-user-id}/media`: feed media and reels not after `now`, newest first (stories are
    never on this edge)."""
    upper = now
    if before_key is not None:
        upper = min(upper, dt.datetime.fromtimestamp(before_key[0], dt.UTC))
    floor = now.date() - dt.timedelta(days=config.history_days)
    day = upper.date()
    while day >= floor:
        for media in reversed(media_for_day(user_id, day, config)):
            if media.timestamp <= now and (before_key is None or media.sort_key() < before_key):
                yield media
        day -= dt.timedelta(days=1)


def live_stories_desc(
    user_id: str,
    *,
    now: dt.datetime,
    config: SandboxConfig = DEFAULT_CONFIG,
    before_key: tuple[int, str] | None = None,
) -> Iterator[IgMedia]:
    """`/{ig-user-id}/stories`: the stories of the last 24 h, newest first."""
    for day in (now.date(), now.date() - dt.timedelta(days=1)):
        for story in reversed(stories_for_day(user_id, day, config)):
            if story.is_live_story(now) and (before_key is None or story.sort_key() < before_key):
                yield story


# --- insights ----------------------------------------------------------------------------------


def insights_ready(media: IgMedia, now: dt.datetime) -> bool:
    """False while Graph has not computed the insights yet (it then answers an empty list)."""
    wait = _STORY_READY if media.kind is Kind.STORY else _FEED_READY
    return now - media.timestamp >= wait


def too_few_viewers(media: IgMedia, config: SandboxConfig = DEFAULT_CONFIG) -> bool:
    """A story seen by fewer than 5 accounts: Graph refuses its insights with code 10."""
    return media.kind is Kind.STORY and unit(config.seed, "tiny-story", media.id) < 0.15


def media_insights(
    media: IgMedia, now: dt.datetime, config: SandboxConfig = DEFAULT_CONFIG
) -> dict[str, int]:
    """Lifetime insights of `media` observed at `now`: non-decreasing in `now`, a function of
    the UTC date for feed media and reels, of the hour for stories."""
    seed, key = config.seed, media.id
    if media.kind is Kind.STORY:
        hours = max(0, int((now - media.timestamp).total_seconds() // 3600))
        fraction = min(1.0, (hours + 1) / 24)
        reach_final = 5 + hash_int(seed, "story-reach", key) % 1_500
    else:
        age_days = max(0, (now.date() - media.day).days)
        fraction = growth_fraction(age_days)
        factor = 3.0 if media.shape is Shape.REEL else 1.0
        reach_final = int((40 + hash_int(seed, "ig-reach", key) % 6_000) * factor)
    reach = int(reach_final * fraction)

    def share(name: str, zero_chance: float, ceiling: float) -> int:
        if unit(seed, "ig-zero", name, key) < zero_chance:
            return 0
        return int((1 + reach_final * ceiling * unit(seed, "ig", name, key)) * fraction)

    values = {
        "reach": reach,
        "views": int(reach_final * (1.1 + 1.5 * unit(seed, "ig-views", key)) * fraction),
        "shares": share("shares", 0.35, 0.02),
        "total_interactions": 0,
    }
    if media.kind is Kind.STORY:
        values["replies"] = share("replies", 0.5, 0.01)
        values["navigation"] = int(values["views"] * 0.8)
        values["follows"] = share("follows", 0.7, 0.002)
        values["profile_visits"] = share("profile_visits", 0.3, 0.02)
        values["total_interactions"] = values["replies"] + values["shares"]
    else:
        values["likes"] = share("likes", 0.02, 0.12)
        values["comments"] = share("comments", 0.3, 0.02)
        values["saved"] = share("saved", 0.4, 0.01)
        values["total_interactions"] = (
            values["likes"] + values["comments"] + values["saved"] + values["shares"]
        )
        values["follows"] = share("follows", 0.7, 0.002)
        values["profile_visits"] = share("profile_visits", 0.3, 0.02)
        if media.shape is Shape.REEL:
            values["ig_reels_avg_watch_time"] = 2_000 + hash_int(seed, "watch", key) % 20_000
            values["ig_reels_video_view_total_time"] = (
                values["views"] * values["ig_reels_avg_watch_time"]
            )
    return values


@dataclass(frozen=True)
class AccountDay:
    """An account's own numbers for one (Pacific) day."""

    reach: int
    follower_count: int  # NEW followers that day
    profile_views: int
    website_clicks: int
    views: int
    accounts_engaged: int


def account_day(user_id: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG) -> AccountDay:
    seed, key = config.seed, f"{user_id}|{day.isoformat()}"
    reach = 100 + hash_int(seed, "ig-acc-reach", key) % 30_000
    new = 0 if unit(seed, "ig-acc-nofollow", key) < 0.2 else hash_int(seed, "ig-acc-f", key) % 90
    return AccountDay(
        reach=reach,
        follower_count=new,
        profile_views=hash_int(seed, "ig-acc-profile", key) % max(1, reach // 15),
        website_clicks=0
        if unit(seed, "ig-acc-noclick", key) < 0.25
        else hash_int(seed, "ig-acc-click", key) % max(1, reach // 200),
        views=int(reach * (1.5 + unit(seed, "ig-acc-views", key))),
        accounts_engaged=hash_int(seed, "ig-acc-engaged", key) % max(1, reach // 10),
    )


def day_end(day: dt.date) -> dt.datetime:
    """`end_time` of a daily account value (the next Pacific midnight, as for pages)."""
    return pacific_day_end(day)
