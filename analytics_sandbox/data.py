"""Deterministic synthetic content and metrics for the sandbox.

Everything here is a pure function of its arguments (plus a `SandboxConfig`): the same page and
day always give the same posts, and the same post and observation UTC date always give the same
lifetime metric values. Randomness comes from SHA-256 of the inputs, never from the global
`random` state, so two sandbox servers (or two test runs) answer byte for byte the same.

Post ids look like Graph's `<page_id>_<n>`; `n` encodes a page tag, the day and the post's
index within that day, so a post id can be resolved back to its post without any storage. The
video of a video or reel post has the id `9<n><page_id>` (resolvable the same way), and page
insights are a pure function of (page, Pacific day). Instagram's synthetic world lives in
`instagram_data` (IG user ids start with "1784" and are never Facebook pages).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from zoneinfo import ZoneInfo

from analytics_sandbox.seeds import (
    day_count,
    growth_fraction,
    hash_int,
    pick,
    spread_seconds,
    unit,
    utc_midnight,
)

Clock = Callable[[], dt.datetime]
"""Returns the current time as a timezone-aware UTC datetime."""

_MAX_POSTS_PER_DAY = 999  # the post index is encoded on three digits
VIDEO_ID_PREFIX = "9"  # video ids: "9" + the post's 14-digit number + the page id


def utc_now() -> dt.datetime:
    """The default clock: real UTC time."""
    return dt.datetime.now(dt.UTC)


class FixedClock:
    """A settable clock for tests and demos; thread-safe enough for single assignments."""

    def __init__(self, now: dt.datetime) -> None:
        self._now = _require_aware(now)

    def __call__(self) -> dt.datetime:
        return self._now

    def set(self, now: dt.datetime) -> None:
        self._now = _require_aware(now)

    def advance(self, delta: dt.timedelta) -> None:
        self._now = self._now + delta


def _require_aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("the sandbox clock needs a timezone-aware datetime")
    return value.astimezone(dt.UTC)


@dataclass(frozen=True)
class SandboxConfig:
    """Shape of the synthetic world.

    `known_pages` None means every all-digit id is an existing page. `history_days` bounds how
    far back a page has posts (a listing without `since` stops there).
    """

    posts_per_day: tuple[int, int] = (0, 5)
    known_pages: frozenset[str] | None = None
    history_days: int = 730
    seed: str = "analytics-sandbox"

    def __post_init__(self) -> None:
        low, high = self.posts_per_day
        if not 0 <= low <= high <= _MAX_POSTS_PER_DAY:
            raise ValueError(f"posts_per_day must satisfy 0 <= low <= high <= {_MAX_POSTS_PER_DAY}")
        if self.history_days < 1:
            raise ValueError("history_days must be positive")


DEFAULT_CONFIG = SandboxConfig()


class PostFormat(StrEnum):
    PHOTO = "photo"
    VIDEO = "video"
    REEL = "reel"
    ALBUM = "album"
    LINK = "link"
    TEXT = "text"


_FORMAT_WEIGHTS: tuple[tuple[PostFormat, int], ...] = (
    (PostFormat.PHOTO, 30),
    (PostFormat.VIDEO, 12),
    (PostFormat.REEL, 15),
    (PostFormat.ALBUM, 10),
    (PostFormat.LINK, 13),
    (PostFormat.TEXT, 20),
)

_STATUS_TYPES: dict[PostFormat, str] = {
    PostFormat.PHOTO: "added_photos",
    PostFormat.ALBUM: "added_photos",
    PostFormat.VIDEO: "added_video",
    PostFormat.REEL: "added_video",
    PostFormat.LINK: "shared_story",
    PostFormat.TEXT: "mobile_status_update",
}

_SENTENCES: tuple[str, ...] = (
    "Big news today: our new collection is live",
    "Meet the team behind this week's workshop",
    "Thank you for 10k followers!",
    "Café opening hours change on Monday 🎉",
    "Three tips to get more out of your morning routine",
    "Throwback to last summer's festival",
    "We asked our customers what they love most",
    "Doors open at 9, see you there",
    "A quick look behind the scenes",
    "New blog post: how we cut our packaging waste by half",
    "Sneak peek of what's coming next month",
    "Weekend plans? We have a few ideas",
)

_HASHTAGS: tuple[str, ...] = (
    "Launch",
    "Summer",
    "BehindTheScenes",
    "TeamLife",
    "NewArrivals",
    "Sustainability",
    "TBT",
    "CustomerStories",
)

_REACTION_SHARES: tuple[tuple[str, float, float], ...] = (
    # (reaction, probability it is non-zero, share of reach at most)
    ("like", 0.95, 0.10),
    ("love", 0.60, 0.03),
    ("haha", 0.25, 0.01),
    ("wow", 0.25, 0.01),
    ("care", 0.20, 0.005),
    ("sorry", 0.08, 0.004),
    ("anger", 0.05, 0.003),
)


@dataclass(frozen=True)
class Attachment:
    media_type: str
    type: str
    url: str
    title: str | None = None
    description: str | None = None
    target_id: str | None = None
    subattachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class SyntheticPost:
    page_id: str
    number: str  # the `<n>` of `<page_id>_<n>`
    created_time: dt.datetime  # aware UTC, whole seconds
    format: PostFormat
    message: str | None
    attachment: Attachment | None = field(default=None)

    @property
    def id(self) -> str:
        return f"{self.page_id}_{self.number}"

    @property
    def status_type(self) -> str:
        return _STATUS_TYPES[self.format]

    @property
    def video_id(self) -> str | None:
        """The id of the post's video (videos and reels only)."""
        return f"{VIDEO_ID_PREFIX}{self.number}{self.page_id}" if self.is_video else None

    @property
    def permalink_url(self) -> str:
        if self.format is PostFormat.REEL:
            return f"https://www.facebook.com/reel/{self.video_id}"
        return f"https://www.facebook.com/{self.page_id}/posts/{self.number}"

    @property
    def is_video(self) -> bool:
        return self.format in (PostFormat.VIDEO, PostFormat.REEL)

    def sort_key(self) -> tuple[int, str]:
        """Listing order key: newest first means descending by this key."""
        return (int(self.created_time.timestamp()), self.number)


@dataclass(frozen=True)
class PostMetrics:
    """Lifetime totals of one post as observed on one UTC date."""

    media_view: int
    media_view_unique: int
    clicks: int
    reactions: dict[str, int]  # only non-zero reaction types
    comments: int
    shares: int
    video_views: int | None  # None for posts that are not videos or reels

    @property
    def likes(self) -> int:
        return self.reactions.get("like", 0)

    @property
    def reactions_total(self) -> int:
        return sum(self.reactions.values())


# --- pages -------------------------------------------------------------------------------------


IG_USER_PREFIX = "1784"


def is_ig_user_id(account_id: str) -> bool:
    """Instagram professional account ids of the sandbox: all digits, starting with 1784."""
    return account_id.isdigit() and account_id.startswith(IG_USER_PREFIX) and len(account_id) >= 8


def page_exists(page_id: str, config: SandboxConfig = DEFAULT_CONFIG) -> bool:
    if is_ig_user_id(page_id):
        return False  # an Instagram account, not a page
    if config.known_pages is not None:
        return page_id in config.known_pages
    return page_id.isdigit()


def page_name(page_id: str) -> str:
    return f"Sandbox Page {page_id}"


def page_followers(page_id: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG) -> int:
    """A follower total that drifts upward day by day (a current-total snapshot value)."""
    base = 1_000 + hash_int(config.seed, "followers", page_id) % 50_000
    growth = 1 + hash_int(config.seed, "followers-growth", page_id) % 40
    return base + growth * (day.toordinal() - dt.date(2024, 1, 1).toordinal())


def _page_tag(page_id: str, config: SandboxConfig) -> int:
    return 1000 + hash_int(config.seed, "page-tag", page_id) % 9000


def _encode_number(page_id: str, day: dt.date, index: int, config: SandboxConfig) -> str:
    return f"{_page_tag(page_id, config):04d}{day.toordinal():07d}{index:03d}"


# --- posts -------------------------------------------------------------------------------------


def post_count(page_id: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG) -> int:
    return day_count(config.posts_per_day, config.seed, "count", page_id, day.isoformat())


def posts_for_day(
    page_id: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG
) -> list[SyntheticPost]:
    """The page's posts published on `day` (UTC), oldest first. Empty for unknown pages."""
    if not page_exists(page_id, config):
        return []
    count = post_count(page_id, day, config)
    seconds = spread_seconds(count, config.seed, "time", page_id, day.isoformat())
    midnight = utc_midnight(day)
    return [
        _build_post(page_id, day, index, midnight + dt.timedelta(seconds=second), config)
        for index, second in enumerate(seconds)
    ]


def _build_post(
    page_id: str, day: dt.date, index: int, created: dt.datetime, config: SandboxConfig
) -> SyntheticPost:
    number = _encode_number(page_id, day, index, config)
    fmt = pick(_FORMAT_WEIGHTS, config.seed, "format", number)
    return SyntheticPost(
        page_id=page_id,
        number=number,
        created_time=created,
        format=fmt,
        message=_caption(config.seed, number, fmt),
        attachment=_attachment(config.seed, page_id, number, fmt),
    )


def _caption(seed: str, number: str, fmt: PostFormat) -> str | None:
    return synthetic_caption(seed, number, may_be_empty=fmt in (PostFormat.PHOTO, PostFormat.REEL))


def synthetic_caption(seed: str, key: str, *, may_be_empty: bool) -> str | None:
    """0-3 hashtags, sometimes one repeated in another case (`#Launch ... #launch`); None (no
    text at all) for about one in eight items that `may_be_empty`."""
    if may_be_empty and unit(seed, "no-caption", key) < 0.12:
        return None  # Graph omits `message` / `caption` for an item without text
    sentence = _SENTENCES[hash_int(seed, "sentence", key) % len(_SENTENCES)]
    tag_count = hash_int(seed, "tag-count", key) % 4
    tags = [_HASHTAGS[hash_int(seed, "tag", key, i) % len(_HASHTAGS)] for i in range(tag_count)]
    if tag_count >= 2 and unit(seed, "dup-tag", key) < 0.4:
        tags[-1] = tags[0].lower()
    words = [f"#{tag}" for tag in tags]
    if words and unit(seed, "inline-tag", key) < 0.3:
        return f"{words[0]} {sentence}. {' '.join(words[1:])}".rstrip()
    return f"{sentence}. {' '.join(words)}".rstrip()


def _attachment(seed: str, page_id: str, number: str, fmt: PostFormat) -> Attachment | None:
    if fmt is PostFormat.TEXT:
        return None
    if fmt is PostFormat.PHOTO:
        return _photo(page_id, number + "1")
    video_id = f"{VIDEO_ID_PREFIX}{number}{page_id}"
    if fmt is PostFormat.VIDEO:
        url = f"https://www.facebook.com/{page_id}/videos/{video_id}/"
        return Attachment("video", "video_inline", url, target_id=video_id)
    if fmt is PostFormat.REEL:
        url = f"https://www.facebook.com/reel/{video_id}/"
        return Attachment("video", "video_inline", url, target_id=video_id)
    if fmt is PostFormat.ALBUM:
        size = 2 + hash_int(seed, "album-size", number) % 5
        children = tuple(_photo(page_id, f"{number}{i + 1}") for i in range(size))
        url = f"https://www.facebook.com/media/set/?set=a.{number}&type=3"
        return Attachment(
            "album", "album", url, title="Photos from our week", subattachments=children
        )
    slug = f"story-{hash_int(seed, 'slug', number) % 10_000}"
    return Attachment(
        "link",
        "share",
        f"https://example.com/blog/{slug}",
        title="Read the full story on our blog",
        description="Everything we learned this season, in one place.",
    )


def _photo(page_id: str, photo_id: str) -> Attachment:
    url = f"https://www.facebook.com/photo.php?fbid={photo_id}&set=a.{page_id}&type=3"
    return Attachment("photo", "photo", url, target_id=photo_id)


def decode_post_id(post_id: str, config: SandboxConfig = DEFAULT_CONFIG) -> SyntheticPost | None:
    """The post behind a `<page_id>_<n>` id, or None when no such post was ever published."""
    page_id, sep, number = post_id.partition("_")
    if not sep or len(number) != 14 or not number.isdigit() or not page_exists(page_id, config):
        return None
    if int(number[:4]) != _page_tag(page_id, config):
        return None
    try:
        day = dt.date.fromordinal(int(number[4:11]))
    except ValueError:
        return None
    index = int(number[11:])
    posts = posts_for_day(page_id, day, config)
    return posts[index] if index < len(posts) else None


def iter_posts_desc(
    page_id: str,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    now: dt.datetime,
    config: SandboxConfig = DEFAULT_CONFIG,
    before_key: tuple[int, str] | None = None,
) -> Iterator[SyntheticPost]:
    """Posts with created_time in [since, until) and not after `now`, newest first.

    `before_key` continues a listing: only posts whose `sort_key()` is below it are yielded.
    """
    upper = now if until is None else min(until - dt.timedelta(seconds=1), now)
    if before_key is not None:
        upper = min(upper, dt.datetime.fromtimestamp(before_key[0], dt.UTC))
    floor_day = now.date() - dt.timedelta(days=config.history_days)
    lower_day = floor_day if since is None else max(since.date(), floor_day)
    day = upper.date()
    while day >= lower_day:
        for post in reversed(posts_for_day(page_id, day, config)):
            if _in_window(post, since, until, now, before_key):
                yield post
        day -= dt.timedelta(days=1)


def _in_window(
    post: SyntheticPost,
    since: dt.datetime | None,
    until: dt.datetime | None,
    now: dt.datetime,
    before_key: tuple[int, str] | None,
) -> bool:
    created = post.created_time
    if created > now or (since is not None and created < since):
        return False
    if until is not None and created >= until:
        return False
    return before_key is None or post.sort_key() < before_key


# --- metrics -----------------------------------------------------------------------------------


def insights_available(post: SyntheticPost, now: dt.datetime) -> bool:
    """Graph has no insights for a post younger than about an hour."""
    return now - post.created_time >= dt.timedelta(hours=1)


def metrics_for(
    post: SyntheticPost, observed: dt.date, config: SandboxConfig = DEFAULT_CONFIG
) -> PostMetrics:
    """Lifetime totals on `observed` (UTC date): non-decreasing in the post's age."""
    age_days = max(0, (observed - post.created_time.date()).days)
    fraction = growth_fraction(age_days)
    seed, key = config.seed, post.id
    reach = _final_reach(seed, post)
    views = reach * (1.2 + 1.3 * unit(seed, "views", key))
    clicks = 0.0 if unit(seed, "no-clicks", key) < 0.25 else reach * 0.08 * unit(seed, "ck", key)
    shares = 0.0 if unit(seed, "no-shares", key) < 0.4 else 1 + reach * 0.02 * unit(seed, "sh", key)
    comments = 0.0 if unit(seed, "no-comm", key) < 0.3 else 1 + reach * 0.03 * unit(seed, "c", key)
    reactions: dict[str, int] = {}
    for name, probability, ceiling in _REACTION_SHARES:
        if unit(seed, "has", name, key) < probability:
            value = int((1 + reach * ceiling * unit(seed, "r", name, key)) * fraction)
            if value:
                reactions[name] = value
    video_views = None
    if post.is_video:
        video_views = int(views * (0.3 + 0.5 * unit(seed, "vv", key)) * fraction)
    return PostMetrics(
        media_view=int(views * fraction),
        media_view_unique=int(reach * fraction),
        clicks=int(clicks * fraction),
        reactions=reactions,
        comments=int(comments * fraction),
        shares=int(shares * fraction),
        video_views=video_views,
    )


def _final_reach(seed: str, post: SyntheticPost) -> float:
    factor = {
        PostFormat.REEL: 3.0,
        PostFormat.VIDEO: 1.5,
        PostFormat.TEXT: 0.6,
    }.get(post.format, 1.0)
    return (50 + hash_int(seed, "reach", post.id) % 5_000) * factor


# --- videos (video and reel posts) -------------------------------------------------------------


def decode_video_id(video_id: str, config: SandboxConfig = DEFAULT_CONFIG) -> SyntheticPost | None:
    """The video or reel post behind a video id (`9<n><page_id>`), or None."""
    if not video_id.startswith(VIDEO_ID_PREFIX) or not video_id.isdigit():
        return None
    number, page_id = video_id[1:15], video_id[15:]
    if len(number) != 14 or not page_id:
        return None
    post = decode_post_id(f"{page_id}_{number}", config)
    return post if post is not None and post.video_id == video_id else None


def reels_desc(
    page_id: str,
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    now: dt.datetime,
    config: SandboxConfig = DEFAULT_CONFIG,
    before_key: tuple[int, str] | None = None,
) -> Iterator[SyntheticPost]:
    """The page's reels (what `/{page-id}/video_reels` lists), newest first."""
    for post in iter_posts_desc(
        page_id, since=since, until=until, now=now, config=config, before_key=before_key
    ):
        if post.format is PostFormat.REEL:
            yield post


# --- page insights (period=day) ----------------------------------------------------------------

PACIFIC = ZoneInfo("America/Los_Angeles")


def pacific_day_end(day: dt.date) -> dt.datetime:
    """The `end_time` Graph gives the daily value of `day`: the next Pacific midnight, in UTC
    (08:00 UTC in standard time, 07:00 UTC in daylight saving time)."""
    next_day = day + dt.timedelta(days=1)
    return dt.datetime.combine(next_day, dt.time(), tzinfo=PACIFIC).astimezone(dt.UTC)


@dataclass(frozen=True)
class PageDay:
    """A page's own numbers for one (Pacific) day."""

    media_view: int
    media_view_unique: int
    daily_follows_unique: int
    daily_follows: int
    views_total: int
    post_engagements: int


def page_day(page_id: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG) -> PageDay:
    """Deterministic daily page insights; some days have no new follows at all (a real 0)."""
    seed, key = config.seed, f"{page_id}|{day.isoformat()}"
    reach = 200 + hash_int(seed, "page-reach", key) % 20_000
    views = int(reach * (1.3 + unit(seed, "page-views", key)))
    follows = (
        0
        if unit(seed, "page-no-follows", key) < 0.2
        else 1 + hash_int(seed, "page-follows", key) % max(1, reach // 100)
    )
    return PageDay(
        media_view=views,
        media_view_unique=reach,
        daily_follows_unique=follows,
        daily_follows=follows + (hash_int(seed, "page-refollows", key) % 3 if follows else 0),
        views_total=hash_int(seed, "page-profile-views", key) % max(1, reach // 20),
        post_engagements=hash_int(seed, "page-engagements", key) % max(1, reach // 8),
    )
