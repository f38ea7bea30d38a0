"""What counts as an engagement on each platform (the README's "KPIs" section says the same).

None of the platforms' own engagement figures is stored in the warehouse (LinkedIn's `engagement`
is a ratio, Instagram's `total_interactions` is not asked), so engagements are a documented sum of
the per-day counts each platform reports, never a column the platform does not fill:

- facebook: reactions (every reaction type, likes included) + comments + shares + clicks;
- instagram: likes + comments + shares + saves (what `total_interactions` adds up);
- linkedin: likes (every reaction) + comments + shares + clicks (LinkedIn's engagement numerator,
  follows excluded: they are not reported per post);
- x: likes + comments (replies) + shares (reposts + quotes) + saves (bookmarks) + clicks (link and
  profile clicks; user-context only).

The sum covers the inputs that were reported; `engagement_inputs_known` says how many of the
platform's inputs that is. No reported input at all -> NULL, never 0.

Rates: engagements / denominator, NULL when the engagements are unknown or the denominator is
unknown, zero or negative (a platform recount). Per-day values of a lifetime counter can go down
(`counter_decreased`), so a rate is guaranteed within [0, RATE_UPPER_BOUND] only on rows without
a decreased counter; see the KPI checks.
"""

from __future__ import annotations

from analytics_pipeline.records import Platform

ENGAGEMENT_INPUTS: dict[str, tuple[str, ...]] = {
    Platform.FACEBOOK.value: ("reactions", "comments", "shares", "clicks"),
    Platform.INSTAGRAM.value: ("likes", "comments", "shares", "saves"),
    Platform.LINKEDIN.value: ("likes", "comments", "shares", "clicks"),
    Platform.X.value: ("likes", "comments", "shares", "saves", "clicks"),
}

# Every metric column any platform's engagement reads.
ENGAGEMENT_COLUMNS: tuple[str, ...] = tuple(
    sorted({name for inputs in ENGAGEMENT_INPUTS.values() for name in inputs})
)

# A rate above this is flagged by a WARN check: more engagements than accounts reached (or
# impressions) in a day happens (one person likes, comments and clicks) but several times more
# usually means a platform recount or a bad input.
RATE_UPPER_BOUND = 5.0
