"""Lifetime totals are stamped on the day they were observed, and history never moves.

Runs go through Dagster against a sandbox whose clock, like the ingestion's, is set per run: the
sandbox's totals grow with the day they are observed on (`sandbox_data.metrics_for`), so a total
restamped onto an older day would show as a changed row.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline import ingest
from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.assets import social_ingestion
from analytics_pipeline.defs.partitions import INTEGRATIONS_PARTITIONS_NAME, range_run_tags
from analytics_pipeline.defs.resources import PlatformsResource, WarehouseResource
from analytics_pipeline.warehouse import tables
from analytics_pipeline_tests.helpers import track_facebook_pages
from analytics_sandbox import data as sandbox_data
from analytics_sandbox.data import FixedClock
from analytics_sandbox.server import SandboxServer

TOKEN_ENV = "ANALYTICS_TEST_SNAPSHOT_TOKEN"
PAGES = {"fb-1": "1000001"}
END = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
START = END - dt.timedelta(days=2)
NEXT = END + dt.timedelta(days=1)


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=dt.UTC)


@pytest.fixture
def pipeline(warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv(TOKEN_ENV, "tok-snapshots")
    engine = wh.make_engine(warehouse_url)
    wh.migrate(engine)
    track_facebook_pages(engine, PAGES, TOKEN_ENV, organization_id="org-snap")
    clock = FixedClock(at(END, 20))
    with SandboxServer(clock=clock) as sandbox, dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, list(PAGES))
        platforms = PlatformsResource.from_env({"ANALYTICS_FACEBOOK_BASE_URL": sandbox.base_url})
        resources = {"warehouse": WarehouseResource(url=warehouse_url), "platforms": platforms}

        def run(when: dt.datetime, start: dt.date = START, end: dt.date = END) -> None:
            clock.set(when)
            monkeypatch.setattr(ingest, "utc_now", lambda: when)
            result = dg.materialize(
                [social_ingestion],
                instance=instance,
                resources=resources,
                tags=range_run_tags(start, end, list(PAGES)),
            )
            assert result.success

        yield {"engine": engine, "run": run, "sandbox": sandbox}
    engine.dispose()


def _metrics(engine: sa.Engine) -> dict[tuple[str, dt.date], tuple[Any, ...]]:
    table = tables.content_metrics_daily
    query = sa.select(
        table.c.external_content_id, table.c.metric_date, table.c.comments, table.c.observed_at
    )
    with engine.connect() as conn:
        return {(row[0], row[1]): tuple(row[2:]) for row in conn.execute(query)}


def _followers(engine: sa.Engine) -> dict[dt.date, tuple[Any, ...]]:
    table = tables.account_metrics_daily
    query = sa.select(table.c.metric_date, table.c.followers_total, table.c.followers_observed_at)
    with engine.connect() as conn:
        return {row[0]: tuple(row[1:]) for row in conn.execute(query)}


def _truth(
    window_end: dt.date, day_observed: dt.date, seen_at: dt.datetime | None = None
) -> dict[str, int | None]:
    """Comment totals the sandbox reports on `day_observed` for the window ending on
    `window_end` (what metrics `window_end` covers), of the posts published by `seen_at` (a
    run at 20:00 cannot see a post published at 21:00 that day)."""
    posts = [
        post
        for n in range(28)
        for post in sandbox_data.posts_for_day(PAGES["fb-1"], window_end - dt.timedelta(days=n))
        if seen_at is None or post.created_time <= seen_at
    ]
    return {post.id: sandbox_data.metrics_for(post, day_observed).comments for post in posts}


def test_only_the_day_observed_records_a_snapshot(pipeline: dict[str, Any]) -> None:
    pipeline["run"](at(END, 20))
    rows = _metrics(pipeline["engine"])
    assert rows and {day for _, day in rows} == {END}
    assert {cid: comments for (cid, _), (comments, _) in rows.items()} == _truth(
        END, END, at(END, 20)
    )
    followers = _followers(pipeline["engine"])
    assert set(followers) == {START, START + dt.timedelta(days=1), END}
    assert [day for day, (total, _) in followers.items() if total is not None] == [END]


def test_re_running_old_partitions_later_never_moves_history(pipeline: dict[str, Any]) -> None:
    pipeline["run"](at(END, 20))
    before = (_metrics(pipeline["engine"]), _followers(pipeline["engine"]))
    # Two days later the totals have grown; the same partitions run again.
    pipeline["run"](at(END + dt.timedelta(days=2), 12))
    assert _truth(END, END + dt.timedelta(days=2)) != _truth(END, END), "totals must grow"
    assert (_metrics(pipeline["engine"]), _followers(pipeline["engine"])) == before


def test_before_the_cutoff_a_run_records_the_end_of_yesterday(pipeline: dict[str, Any]) -> None:
    pipeline["run"](at(END, 20))
    pipeline["run"](at(NEXT, 1, 30), END, END)  # the daily run, inside the cutoff
    rows = _metrics(pipeline["engine"])
    assert {cid: comments for (cid, _), (comments, _) in rows.items()} == _truth(END, NEXT)
    assert {observed for _, observed in rows.values() if observed == at(NEXT, 1, 30)}
    latest = _metrics(pipeline["engine"])
    pipeline["run"](at(NEXT, 3, 0), END, END)  # the cutoff has passed: END is history now
    assert _metrics(pipeline["engine"]) == latest


def test_the_change_view_credits_each_day_with_its_own_growth(pipeline: dict[str, Any]) -> None:
    pipeline["run"](at(END, 20))
    pipeline["run"](at(NEXT, 20), NEXT, NEXT)
    view = tables.content_metrics_daily_change
    query = sa.select(view.c.external_content_id, view.c.comments_on_day).where(
        view.c.metric_date == NEXT
    )
    with pipeline["engine"].connect() as conn:
        on_day = dict(conn.execute(query).all())
    before, after = _truth(END, END, at(END, 20)), _truth(NEXT, NEXT, at(NEXT, 20))
    both = [cid for cid in on_day if cid in before]  # in END's window and NEXT's
    assert both and all(on_day[cid] == after[cid] - before[cid] for cid in both)


def test_a_refresh_of_the_current_day_costs_the_lower_bound(pipeline: dict[str, Any]) -> None:
    """What the refresh schedule runs every few hours: the current day's three partitions. One
    range listing page, one account batch, ceil(batch items / 50) metrics batches (a reel
    is two items: its post fields and its video_insights), and the run's one token check
    (debug_token, a batch of one: test_meta_token_check.py)."""
    pipeline["run"](at(END, 20), END, END)
    sandbox = pipeline["sandbox"]
    sandbox.reset()
    pipeline["run"](at(END, 23), END, END)
    window = [
        post
        for n in range(28)
        for post in sandbox_data.posts_for_day(PAGES["fb-1"], END - dt.timedelta(days=n))
    ]
    reels = sum(post.format is sandbox_data.PostFormat.REEL for post in window)
    assert len(window) <= 100, "one listing page: keep the data set small enough"
    expected = 1 + 1 + math.ceil((len(window) + reels) / 50) + 1
    assert sandbox.request_count() == expected
