"""Deterministic synthetic X (Twitter) users, posts and metrics for the sandbox.

Pure functions of their arguments (plus a `SandboxConfig`), seeded with SHA-256 like
`sandbox.data`: the same user and UTC day always give the same posts, the same post and
observation UTC date always give the same lifetime metrics.

Post ids are real snowflakes, so a client can read a post's creation time from its id as it
can on X: `id = (ms_since_x_epoch << 22) | low22`. The sandbox stores the author in the bits
X uses for worker/sequence and in the milliseconds: `low22 = user // 1000` and
`ms % 1000 = user % 1000`, so an id resolves back to its post without any storage. Hence the
sandbox's X users are all-digit ids below `MAX_USER_ID` (about 4.19e9), e.g. "3000001" (the
demo/test convention) or "2244994945" (@XDevelopers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from analytics_sandbox.data import DEFAULT_CONFIG, SandboxConfig
from analytics_sandbox.seeds import (
    day_count,
    growth_fraction,
    hash_int,
    pick,
    spread_seconds,
    unit,
    utc_midnight,
)

X_EPOCH_MS = 1288834974657  # 2010-11-04T01:42:54.657Z, the snowflake epoch
_LOW_BITS = 22
MAX_USER_ID = 1000 * 2**_LOW_BITS - 1
PRIVATE_METRICS_DAYS = 30  # non_public / organic metrics only for posts younger than this
# The account every reply / quote / retweet refers to (not a tracked account).
OTHER_USER_ID = "783214"


class TweetKind(StrEnum):
    ORIGINAL = "original"
    QUOTE = "quoted"
    REPLY = "replied_to"
    RETWEET = "retweeted"


class MediaType(StrEnum):
    PHOTO = "photo"
    VIDEO = "video"
    ANIMATED_GIF = "animated_gif"


_MEDIA_KEY_PREFIX: dict[MediaType, str] = {
    MediaType.PHOTO: "3",
    MediaType.VIDEO: "7",
    MediaType.ANIMATED_GIF: "16",
}


class Attachment(StrEnum):
    """What an (original, quote or reply) post carries besides its text."""

    NONE = "none"
    PHOTO = "photo"
    PHOTOS = "photos"
    VIDEO = "video"
    GIF = "gif"
    LINK = "link"


_KIND_WEIGHTS: tuple[tuple[TweetKind, int], ...] = (
    (TweetKind.ORIGINAL, 60),
    (TweetKind.QUOTE, 10),
    (TweetKind.REPLY, 12),
    (TweetKind.RETWEET, 18),
)
_ATTACHMENT_WEIGHTS: tuple[tuple[Attachment, int], ...] = (
    (Attachment.NONE, 35),
    (Attachment.PHOTO, 25),
    (Attachment.PHOTOS, 10),
    (Attachment.VIDEO, 12),
    (Attachment.GIF, 5),
    (Attachment.LINK, 13),
)

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
    "Sneak peek of what's coming next month",
)
_LONG_PARAGRAPH = (
    "Here is the long version, because some stories do not fit in one post. We spent the "
    "whole season listening to you, rebuilt the workshop from the ground up, and tested every "
    "change with the people who use it every day. What came out is simpler, faster and kinder "
    "to the planet, and we could not be prouder of the team that made it happen."
)
_HASHTAGS: tuple[str, ...] = (
    "Launch",
    "Summer",
    "BehindTheScenes",
    "TeamLife",
    "NewArrivals",
    "Sustainability",
    "Café",
    "TBT",
)
_TEXT_LIMIT = 280
_SALT = "x"
_T = TypeVar("_T")


# --- hashing ---------------------------------------------------------------------------------


# X's hashes are salted with "x" after the seed, so its world differs from Facebook's.


def _hash_int(seed: str, *parts: object) -> int:
    return hash_int(seed, _SALT, *parts)


def _unit(seed: str, *parts: object) -> float:
    return unit(seed, _SALT, *parts)


def _pick(seed: str, weights: tuple[tuple[_T, int], ...], *parts: object) -> _T:
    return pick(weights, seed, _SALT, *parts)


def _tco(seed: str, *parts: object) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    number = _hash_int(seed, "tco", *parts)
    chars = []
    for _ in range(10):
        number, rest = divmod(number, len(alphabet))
        chars.append(alphabet[rest])
    return "https://t.co/" + "".join(chars)


# --- users -----------------------------------------------------------------------------------


def user_exists(user_id: str, config: SandboxConfig = DEFAULT_CONFIG) -> bool:
    """All-digit ids without a leading zero below MAX_USER_ID (and in `known_pages` if set)."""
    if not user_id.isdigit() or user_id.startswith("0") or int(user_id) > MAX_USER_ID:
        return False
    return config.known_pages is None or user_id in config.known_pages


def username(user_id: str) -> str:
    return f"sbx{user_id}"  # at most 13 characters: X allows 15


def display_name(user_id: str) -> str:
    return f"Sandbox X {user_id}"


def followers(user_id: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG) -> int:
    """A follower total that drifts upward day by day (the current-total snapshot value)."""
    base = 500 + _hash_int(config.seed, "followers", user_id) % 80_000
    growth = 1 + _hash_int(config.seed, "followers-growth", user_id) % 30
    return base + growth * (day.toordinal() - dt.date(2024, 1, 1).toordinal())


# --- ids -------------------------------------------------------------------------------------


def encode_tweet_id(user_id: str, created: dt.datetime) -> str:
    user = int(user_id)
    ms = int(created.timestamp()) * 1000 + user % 1000 - X_EPOCH_MS
    return str((ms << _LOW_BITS) | (user // 1000))


def snowflake_time(tweet_id: str) -> dt.datetime | None:
    """Creation time encoded in a snowflake id (None for a non-numeric id)."""
    if not tweet_id.isdigit():
        return None
    ms = (int(tweet_id) >> _LOW_BITS) + X_EPOCH_MS
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def _author_and_second(tweet_id: str) -> tuple[str, dt.datetime] | None:
    if not tweet_id.isdigit() or len(tweet_id) > 19:
        return None
    number = int(tweet_id)
    ms = (number >> _LOW_BITS) + X_EPOCH_MS
    user = (number & (2**_LOW_BITS - 1)) * 1000 + ms % 1000
    try:
        second = dt.datetime.fromtimestamp(ms // 1000, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return str(user), second


def author_of(tweet_id: str, config: SandboxConfig = DEFAULT_CONFIG) -> str | None:
    """The author of a post the sandbox created (deleted or not yet published included);
    None for an id that names no sandbox post."""
    tweet = decode_tweet_id(tweet_id, config)
    return None if tweet is None else tweet.user_id


# --- posts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Media:
    media_key: str
    type: MediaType
    duration_ms: int | None = None


@dataclass(frozen=True)
class Hashtag:
    start: int
    end: int
    tag: str


@dataclass(frozen=True)
class Url:
    start: int
    end: int
    url: str  # the t.co link in the text
    expanded_url: str
    display_url: str
    media_key: str | None = None


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    username: str
    id: str


@dataclass(frozen=True)
class Entities:
    hashtags: tuple[Hashtag, ...] = ()
    urls: tuple[Url, ...] = ()
    mentions: tuple[Mention, ...] = ()

    def is_empty(self) -> bool:
        return not (self.hashtags or self.urls or self.mentions)


@dataclass(frozen=True)
class SyntheticTweet:
    user_id: str
    id: str
    created_at: dt.datetime  # aware UTC, whole seconds
    kind: TweetKind
    attachment: Attachment
    text: str
    entities: Entities
    media: tuple[Media, ...] = ()
    referenced_id: str | None = None
    in_reply_to_user_id: str | None = None
    # Long posts: `text` is cut at 280 characters, the full text is in the note.
    note_text: str | None = None
    note_entities: Entities | None = None

    @property
    def has_link(self) -> bool:
        return any(url.media_key is None for url in self.entities.urls) or (
            self.note_entities is not None
            and any(url.media_key is None for url in self.note_entities.urls)
        )

    def sort_key(self) -> int:
        return int(self.id)


def tweet_count(user_id: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG) -> int:
    return day_count(config.posts_per_day, config.seed, _SALT, "count", user_id, day.isoformat())


def tweets_for_day(
    user_id: str, day: dt.date, config: SandboxConfig = DEFAULT_CONFIG
) -> list[SyntheticTweet]:
    """The user's posts (retweets included) created on `day` (UTC), oldest first."""
    if not user_exists(user_id, config):
        return []
    count = tweet_count(user_id, day, config)
    seconds = spread_seconds(count, config.seed, _SALT, "time", user_id, day.isoformat())
    midnight = utc_midnight(day)
    return [
        _build_tweet(user_id, midnight + dt.timedelta(seconds=second), config) for second in seconds
    ]


def decode_tweet_id(tweet_id: str, config: SandboxConfig = DEFAULT_CONFIG) -> SyntheticTweet | None:
    """The post behind an id, or None when the sandbox never created it."""
    decoded = _author_and_second(tweet_id)
    if decoded is None:
        return None
    user_id, second = decoded
    if not user_exists(user_id, config):
        return None
    for tweet in tweets_for_day(user_id, second.date(), config):
        if tweet.id == tweet_id:
            return tweet
    return None


def iter_tweets_desc(
    user_id: str,
    *,
    start: dt.datetime | None,
    end: dt.datetime | None,
    now: dt.datetime,
    config: SandboxConfig = DEFAULT_CONFIG,
    before_id: int | None = None,
) -> Iterator[SyntheticTweet]:
    """Posts with start <= created_at <= end (both inclusive, as X documents for the user
    timeline) and not after `now`, newest first; `before_id` continues a listing."""
    upper = now if end is None else min(end, now)
    floor_day = now.date() - dt.timedelta(days=config.history_days)
    lower_day = floor_day if start is None else max(start.date(), floor_day)
    day = upper.date()
    while day >= lower_day:
        for tweet in reversed(tweets_for_day(user_id, day, config)):
            created = tweet.created_at
            if created > upper or (start is not None and created < start):
                continue
            if before_id is not None and tweet.sort_key() >= before_id:
                continue
            yield tweet
        day -= dt.timedelta(days=1)


def timeline_floor(
    user_id: str,
    *,
    limit: int,
    now: dt.datetime,
    config: SandboxConfig = DEFAULT_CONFIG,
    hidden: frozenset[str] = frozenset(),
) -> int | None:
    """The sort key of the oldest of the user's `limit` most recent posts (retweets and
    replies included, `hidden` ones left out), or None when the user has no more than `limit`
    posts: X's timeline reaches no further back than that, whatever start_time says.

    Counts day by day from `now` backwards, generating a day's posts only where the count
    alone is not enough (today, a day with hidden posts, the day the limit falls on)."""
    hidden_days: set[dt.date] = set()
    for tweet_id in hidden:
        decoded = _author_and_second(tweet_id)
        if decoded is not None and decoded[0] == user_id:
            hidden_days.add(decoded[1].date())
    remaining = limit
    day = now.date()
    floor_day = now.date() - dt.timedelta(days=config.history_days)
    while day >= floor_day:
        tweets: list[SyntheticTweet] | None = None
        if day == now.date() or day in hidden_days:
            tweets = [
                t
                for t in tweets_for_day(user_id, day, config)
                if t.created_at <= now and t.id not in hidden
            ]
            count = len(tweets)
        else:
            count = tweet_count(user_id, day, config)
        if count >= remaining:
            tweets = tweets if tweets is not None else tweets_for_day(user_id, day, config)
            return tweets[count - remaining].sort_key()  # oldest first: the remaining newest
        remaining -= count
        day -= dt.timedelta(days=1)
    return None


def _build_tweet(user_id: str, created: dt.datetime, config: SandboxConfig) -> SyntheticTweet:
    seed = config.seed
    tweet_id = encode_tweet_id(user_id, created)
    kind = _pick(seed, _KIND_WEIGHTS, "kind", tweet_id)
    attachment = (
        Attachment.NONE
        if kind is TweetKind.RETWEET
        else _pick(seed, _ATTACHMENT_WEIGHTS, "attachment", tweet_id)
    )
    sentence = _SENTENCES[_hash_int(seed, "sentence", tweet_id) % len(_SENTENCES)]
    tag_count = _hash_int(seed, "tag-count", tweet_id) % 4
    tags = [
        _HASHTAGS[_hash_int(seed, "tag", tweet_id, i) % len(_HASHTAGS)] for i in range(tag_count)
    ]
    if tag_count >= 2 and _unit(seed, "dup-tag", tweet_id) < 0.4:
        tags[-1] = tags[0].upper()  # the same tag in another case: one hashtag after normalizing
    other = OTHER_USER_ID
    referenced_id = None
    reply_to = None
    builder = _TextBuilder()
    if kind is TweetKind.RETWEET:
        builder.add("RT ")
        builder.mention(username(other), other)
        builder.add(": ")
    elif kind is TweetKind.REPLY:
        builder.mention(username(other), other)
        builder.add(" ")
        reply_to = other
    if kind is not TweetKind.ORIGINAL:
        referenced = created - dt.timedelta(hours=1 + _hash_int(seed, "ref", tweet_id) % 48)
        referenced_id = encode_tweet_id(other, referenced)
    long_form = (
        kind is TweetKind.ORIGINAL
        and attachment is Attachment.NONE
        and _unit(seed, "long", tweet_id) < 0.15
    )
    builder.add(sentence if sentence.endswith(("!", "?", "🎉")) else f"{sentence}.")
    if long_form:
        builder.add(f" {_LONG_PARAGRAPH}")
    for tag in tags:
        builder.add(" ")
        builder.hashtag(tag)
    if attachment is Attachment.LINK:
        slug = f"story-{_hash_int(seed, 'slug', tweet_id) % 10_000}"
        builder.add(" ")
        builder.url(_tco(seed, tweet_id, "link"), f"https://example.com/blog/{slug}")
    media = _media(seed, tweet_id, attachment)
    if media:
        builder.add(" ")
        # One t.co link for all of a post's media; X lists it once per media key.
        photo_or_video = "video" if media[0].type is not MediaType.PHOTO else "photo"
        builder.media_urls(
            _tco(seed, tweet_id, "media"),
            f"https://x.com/{username(user_id)}/status/{tweet_id}/{photo_or_video}/1",
            [item.media_key for item in media],
        )
    text, entities = builder.text, builder.entities()
    note_text = note_entities = None
    if len(text) > _TEXT_LIMIT:
        note_text, note_entities = text, entities
        text, entities = builder.truncated(_TEXT_LIMIT)
    return SyntheticTweet(
        user_id=user_id,
        id=tweet_id,
        created_at=created,
        kind=kind,
        attachment=attachment,
        text=text,
        entities=entities,
        media=media,
        referenced_id=referenced_id,
        in_reply_to_user_id=reply_to,
        note_text=note_text,
        note_entities=note_entities,
    )


def _media(seed: str, tweet_id: str, attachment: Attachment) -> tuple[Media, ...]:
    def key(kind: MediaType, index: int) -> str:
        return f"{_MEDIA_KEY_PREFIX[kind]}_{tweet_id}{index}"

    if attachment is Attachment.PHOTO:
        return (Media(key(MediaType.PHOTO, 1), MediaType.PHOTO),)
    if attachment is Attachment.PHOTOS:
        size = 2 + _hash_int(seed, "photos", tweet_id) % 3
        return tuple(Media(key(MediaType.PHOTO, i + 1), MediaType.PHOTO) for i in range(size))
    if attachment is Attachment.VIDEO:
        duration = 5_000 + _hash_int(seed, "duration", tweet_id) % 120_000
        return (Media(key(MediaType.VIDEO, 1), MediaType.VIDEO, duration),)
    if attachment is Attachment.GIF:
        return (Media(key(MediaType.ANIMATED_GIF, 1), MediaType.ANIMATED_GIF),)
    return ()


class _TextBuilder:
    """Text with entity offsets in code points (what X counts in `start` / `end`)."""

    def __init__(self) -> None:
        self.text = ""
        self._hashtags: list[Hashtag] = []
        self._urls: list[Url] = []
        self._mentions: list[Mention] = []

    def add(self, piece: str) -> None:
        self.text += piece

    def hashtag(self, tag: str) -> None:
        start = len(self.text)
        self.text += f"#{tag}"
        self._hashtags.append(Hashtag(start, len(self.text), tag))

    def mention(self, name: str, user_id: str) -> None:
        start = len(self.text)
        self.text += f"@{name}"
        self._mentions.append(Mention(start, len(self.text), name, user_id))

    def url(self, tco: str, expanded: str) -> None:
        start = len(self.text)
        self.text += tco
        self._urls.append(Url(start, len(self.text), tco, expanded, expanded.split("://")[1]))

    def media_urls(self, tco: str, expanded: str, media_keys: list[str]) -> None:
        start = len(self.text)
        self.text += tco
        shown = "pic.x.com/" + tco.rsplit("/", 1)[1]
        for key in media_keys:
            self._urls.append(Url(start, len(self.text), tco, expanded, shown, key))

    def entities(self) -> Entities:
        return Entities(tuple(self._hashtags), tuple(self._urls), tuple(self._mentions))

    def truncated(self, limit: int) -> tuple[str, Entities]:
        """The first `limit - 1` characters plus an ellipsis, with the entities inside it."""
        cut = limit - 1
        return self.text[:cut] + "…", Entities(
            tuple(h for h in self._hashtags if h.end <= cut),
            tuple(u for u in self._urls if u.end <= cut),
            tuple(m for m in self._mentions if m.end <= cut),
        )


# --- metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TweetMetrics:
    """Lifetime totals of one post as observed on one UTC date."""

    impressions: int
    likes: int
    retweets: int
    replies: int
    quotes: int
    bookmarks: int
    profile_clicks: int
    link_clicks: int | None  # None: the post has no link (X leaves the field out)
    media_views: tuple[tuple[str, int], ...]  # (media_key, view_count) of videos and GIFs


def metrics_for(
    tweet: SyntheticTweet, observed: dt.date, config: SandboxConfig = DEFAULT_CONFIG
) -> TweetMetrics:
    """Lifetime totals on `observed`: non-decreasing in the post's age, zero before it."""
    age_days = (observed - tweet.created_at.date()).days
    fraction = 0.0 if age_days < 0 else growth_fraction(age_days)
    seed, key = config.seed, tweet.id
    reach = (40 + _hash_int(seed, "reach", key) % 8_000) * (
        2.0 if tweet.attachment is Attachment.VIDEO else 1.0
    )

    def share(name: str, ceiling: float, zero_probability: float) -> int:
        if _unit(seed, "zero", name, key) < zero_probability:
            return 0
        return int((1 + reach * ceiling * _unit(seed, name, key)) * fraction)

    link_clicks = share("link", 0.05, 0.2) if tweet.has_link else None
    views = tuple(
        (media.media_key, share(f"view-{media.media_key}", 0.6, 0.0))
        for media in tweet.media
        if media.type is not MediaType.PHOTO
    )
    return TweetMetrics(
        impressions=int(reach * (1.5 + _unit(seed, "imp", key)) * fraction),
        likes=share("likes", 0.08, 0.05),
        retweets=share("retweets", 0.02, 0.3),
        replies=share("replies", 0.01, 0.3),
        quotes=share("quotes", 0.005, 0.5),
        bookmarks=share("bookmarks", 0.01, 0.4),
        profile_clicks=share("profile", 0.01, 0.2),
        link_clicks=link_clicks,
        media_views=views,
    )


def private_metrics_available(tweet: SyntheticTweet, now: dt.datetime) -> bool:
    """X serves non_public / organic metrics only for posts created in the last 30 days."""
    return now - tweet.created_at < dt.timedelta(days=PRIVATE_METRICS_DAYS)
