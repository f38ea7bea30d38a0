"""One account of every platform through the same assets, over real HTTP against the sandbox."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline import ingest
from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.assets import (
    ACCOUNT_DAILY_METRICS,
    CONTENT_DAILY_METRICS,
    CONTENT_METADATA,
    social_ingestion,
)
from analytics_pipeline.defs.partitions import (
    INTEGRATIONS_PARTITIONS_NAME,
    SETTINGS,
    range_run_tags,
)
from analytics_pipeline.defs.resources import PlatformsResource, WarehouseResource
from analytics_pipeline.ingest import snapshot_day
from analytics_pipeline.platforms import SUPPORTED_PLATFORMS, client_class
from analytics_pipeline.records import ContentPartition
from analytics_pipeline.warehouse import tables
from analytics_pipeline.warehouse.migrations import migrate
from analytics_sandbox.server import SandboxServer

TOKEN_ENV = "ANALYTICS_TEST_ALL_TOKEN"
ACCOUNTS = {
    "fb-main": ("facebook", "1000001"),
    "ig-main": ("instagram", "17841400000000001"),
    "li-main": ("linkedin", "urn:li:organization:2000001"),
    "x-main": ("x", "3000001"),
}
ACCOUNTS_PLATFORMS = sorted({platform for platform, _ in ACCOUNTS.values()})
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=1)
START = END - dt.timedelta(days=6)
DAYS = [START + dt.timedelta(days=n) for n in range(7)]


RUN_AT = dt.datetime.combine(TODAY, dt.time(1, 30), tzinfo=dt.UTC)  # the ingestion's clock


def _recordable(day: dt.date) -> bool:
    """Only the day a lifetime total was observed on records it (END: 01:30 is its morning)."""
    return day == snapshot_day(RUN_AT, dt.timedelta(hours=SETTINGS.snapshot_cutoff_hours))


@pytest.fixture(scope="module")
def landed(module_warehouse_url):
    """A 7-day backfill of one account per platform (one Dagster run), on each dialect."""
    url = module_warehouse_url
    engine = wh.make_engine(url)
    migrate(engine)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        for integration_id, (platform, account_id) in ACCOUNTS.items():
            wh.add_integration(
                conn,
                organization_id="org-all",
                integration_id=integration_id,
                platform=platform,
                external_account_id=account_id,
                display_name=integration_id,
                credential_env=TOKEN_ENV,
                now=now,
            )
    mp = pytest.MonkeyPatch()
    mp.setenv(TOKEN_ENV, "tok-all-platforms")
    mp.setattr(ingest, "utc_now", lambda: RUN_AT)
    with SandboxServer() as sandbox, dg.instance_for_test() as instance:
        overrides = {
            f"ANALYTICS_{p.upper()}_BASE_URL": sandbox.base_url for p in ACCOUNTS_PLATFORMS
        }
        overrides |= {
            "ANALYTICS_HTTP_BACKOFF_BASE_S": "0.001",
            "ANALYTICS_HTTP_BACKOFF_MAX_S": "0.01",
        }
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, list(ACCOUNTS))
        result = dg.materialize(
            [social_ingestion],
            instance=instance,
            resources={
                "warehouse": WarehouseResource(url=url),
                "platforms": PlatformsResource.from_env(overrides),
            },
            tags=range_run_tags(START, END, list(ACCOUNTS)),
            raise_on_error=False,
        )
        materialized = {
            key: instance.get_materialized_partitions(key)
            for key in (CONTENT_METADATA, CONTENT_DAILY_METRICS, ACCOUNT_DAILY_METRICS)
        }
        yield {"result": result, "engine": engine, "materialized": materialized}
    mp.undo()
    engine.dispose()


def test_every_platform_is_registered():
    assert set(ACCOUNTS_PLATFORMS) == set(SUPPORTED_PLATFORMS)


def test_every_partition_of_every_platform_lands_in_one_run(landed):
    assert landed["result"].success
    expected = {ContentPartition(day, i).key for day in DAYS for i in ACCOUNTS}
    for key, partitions in landed["materialized"].items():
        assert partitions == expected, key


def _count_by(engine, table, column, **filters) -> dict[str, int]:
    query = sa.select(table.c[column], sa.func.count()).group_by(table.c[column])
    for name, value in filters.items():
        query = query.where(table.c[name] == value)
    with engine.connect() as conn:
        return dict(conn.execute(query).all())


def test_every_platform_lands_content_and_metrics(landed):
    engine = landed["engine"]
    items = _count_by(engine, tables.content_items, "integration_id")
    metrics = _count_by(engine, tables.content_metrics_daily, "integration_id")
    assert set(items) == set(ACCOUNTS), items
    assert set(metrics) == set(ACCOUNTS), metrics


def test_value_kind_follows_what_the_platform_reports(landed):
    table = tables.content_metrics_daily
    with landed["engine"].connect() as conn:
        rows = conn.execute(
            sa.select(table.c.integration_id, table.c.value_kind, table.c.metric_date).distinct()
        ).all()
    for integration_id, value_kind, day in rows:
        platform = ACCOUNTS[integration_id][0]
        lifetime = client_class(platform).content_metrics_are_lifetime
        assert value_kind == ("lifetime_snapshot" if lifetime else "daily"), integration_id
        if lifetime:  # never stamped onto a day too old to observe
            assert _recordable(day), (integration_id, day)


def test_account_metrics_snapshot_followers_only_for_recent_days(landed):
    table = tables.account_metrics_daily
    with landed["engine"].connect() as conn:
        rows = conn.execute(
            sa.select(table.c.integration_id, table.c.metric_date, table.c.followers_total)
        ).all()
    assert {(i, d) for i, d, _ in rows} == {(i, d) for i in ACCOUNTS for d in DAYS}
    for integration_id, day, followers in rows:
        if not _recordable(day):
            assert followers is None, (integration_id, day)
    recent = [f for i, d, f in rows if _recordable(d)]
    assert recent and all(f is not None for f in recent), "every platform reports a total"
