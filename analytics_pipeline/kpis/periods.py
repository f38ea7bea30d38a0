"""The periods KPIs roll up to: ISO weeks (Monday to Sunday, UTC) and calendar months (UTC).

A period is identified by its grain and its first day (`period_start`, also its Dagster partition
key). Its follower growth reads the followers snapshot of the day BEFORE it, so a change to the
last day of a period changes the next period too (`periods_affected_by`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

WEEK, MONTH = "week", "month"
GRAINS: tuple[str, ...] = (WEEK, MONTH)


def period_start(grain: str, day: dt.date) -> dt.date:
    """The first day of the `grain` period containing `day` (a Monday, or the 1st)."""
    if grain == WEEK:
        return day - dt.timedelta(days=day.weekday())
    if grain == MONTH:
        return day.replace(day=1)
    raise ValueError(f"unknown period grain {grain!r}")


def period_end(grain: str, start: dt.date) -> dt.date:
    """The last day (inclusive) of the `grain` period starting on `start`."""
    return next_period(grain, start) - dt.timedelta(days=1)


def next_period(grain: str, start: dt.date) -> dt.date:
    """The first day of the period after the one starting on `start`."""
    if grain == WEEK:
        return start + dt.timedelta(days=7)
    if grain == MONTH:
        return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    raise ValueError(f"unknown period grain {grain!r}")


def periods_affected_by(grain: str, days: Iterable[dt.date]) -> list[dt.date]:
    """The starts of the periods whose rollup reads one of `days`: the period containing each
    day, and the next one when the day is its period's last (the next period's followers start)."""
    starts: set[dt.date] = set()
    for day in days:
        start = period_start(grain, day)
        starts.add(start)
        if day == period_end(grain, start):
            starts.add(next_period(grain, start))
    return sorted(starts)


def consecutive_ranges(grain: str, starts: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Period starts grouped into (first, last) runs of consecutive periods."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for start in sorted(set(starts)):
        if ranges and start == next_period(grain, ranges[-1][1]):
            ranges[-1] = (ranges[-1][0], start)
        else:
            ranges.append((start, start))
    return ranges
