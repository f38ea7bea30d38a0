"""The content assets end to end: Dagster run -> real HTTP client -> sandbox -> SQLite warehouse.

The expected figures come from the sandbox's own synthetic-data functions (the same pure
functions that build its HTTP replies), never from numbers written into the test.
"""

from __future__ import annotations

import datetime as dt
import logging

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.assets import CONTENT_DAILY_METRICS, CONTENT_METADATA, social_ingestion
from analytics_pipeline.defs.automation import ingestion_job
from analytics_pipeline.defs.partitions import (
    INTEGRATIONS_PARTITIONS_NAME,
    SETTINGS,
    content_partitions,
    range_run_tags,
)
from analytics_pipeline.defs.resources import PlatformsResource, WarehouseResource
from analytics_pipeline.ingest import snapshot_day
from analytics_pipeline.records import ContentPartition, date_range
from analytics_pipeline.warehouse import tables
from analytics_pipeline_tests.helpers import (
    facebook_sandbox_platforms,
    facebook_warehouse,
)
from analytics_sandbox import data as sandbox_data
from analytics_sandbox.server import SandboxServer

TOKEN_ENV = "ANALYTICS_TEST_FB_TOKEN"
TOKEN = "tok-SECRET-e2e-7f3a9c1d"
PAGES = {"fb-1": "1000001", "fb-2": "1000002", "fb-3": "1000003"}
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=1)
START = END - dt.timedelta(days=6)
DAYS = [START + dt.timedelta(days=n) for n in range(7)]
# The runs happen "at 01:30 UTC today" (the ingestion's clock is replaced): lifetime totals
# observed then are END's snapshot (END = yesterday, inside the snapshot cutoff).
RUN_AT = dt.datetime.combine(TODAY, dt.time(1, 30), tzinfo=dt.UTC)
CUTOFF = dt.timedelta(hours=SETTINGS.snapshot_cutoff_hours)


def _window(day: dt.date) -> list[dt.date]:
    """The lookback window ending on `day`: what metadata `day` records."""
    first = max(day - dt.timedelta(days=SETTINGS.lookback_days - 1), SETTINGS.partitions_start_date)
    return list(date_range(first, day))


LISTED_DAYS = sorted({d for day in DAYS for d in _window(day)})


def _platforms(sandbox: SandboxServer, **overrides: str) -> PlatformsResource:
    return facebook_sandbox_platforms(sandbox.base_url, **overrides)


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer() as server:
        yield server


@pytest.fixture
def env(sandbox, tmp_path, monkeypatch):
    url, engine = facebook_warehouse(
        tmp_path, monkeypatch, sandbox, (TOKEN_ENV, TOKEN), PAGES, RUN_AT, "org-e2e"
    )
    resources = {
        "warehouse": WarehouseResource(url=url),
        "platforms": _platforms(sandbox),
    }
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, list(PAGES))
        yield {"engine": engine, "resources": resources, "instance": instance, "sandbox": sandbox}


def _materialize(env, integration_ids=tuple(PAGES), resources=None):
    return dg.materialize(
        [social_ingestion],
        instance=env["instance"],
        resources=resources or env["resources"],
        tags=range_run_tags(START, END, list(integration_ids)),
        raise_on_error=False,
    )


def _rows(engine: sa.Engine, table: sa.Table, skip=("observed_at", "updated_at")) -> list[tuple]:
    columns = [c for c in table.c if c.name not in skip]
    with engine.connect() as conn:
        return sorted(tuple(row) for row in conn.execute(sa.select(*columns)))


def _expected_posts(page_id: str, days=DAYS) -> list[sandbox_data.SyntheticPost]:
    return [post for day in days for post in sandbox_data.posts_for_day(page_id, day)]


def _recordable_days() -> list[dt.date]:
    return [d for d in DAYS if d == snapshot_day(RUN_AT, CUTOFF)]


def _keys(integration_id: str) -> list[str]:
    return [ContentPartition(day, integration_id).key for day in DAYS]


def _statuses(instance, asset_key, keys):
    return set(instance.get_status_by_partition(asset_key, keys, content_partitions).values())


def test_seven_day_backfill_of_three_pages_lands_expected_rows_and_is_idempotent(env):
    result = _materialize(env)
    assert result.success
    engine = env["engine"]

    content = _rows(engine, tables.content_items)
    expected_ids = sorted(
        p.id for page in PAGES.values() for p in _expected_posts(page, LISTED_DAYS)
    )
    assert sorted(row[3] for row in content) == expected_ids  # external_content_id
    assert expected_ids, "the sandbox produced no posts: the test would prove nothing"

    metric_rows = _rows(engine, tables.content_metrics_daily)
    expected_metric_keys = sorted(
        (integration_id, post.id, day)
        for integration_id, page in PAGES.items()
        for day in _recordable_days()
        for post in _expected_posts(page, _window(day))
    )
    assert sorted((r[1], r[2], r[3]) for r in metric_rows) == expected_metric_keys

    for asset_key in (CONTENT_METADATA, CONTENT_DAILY_METRICS):
        materialized = env["instance"].get_materialized_partitions(asset_key)
        assert materialized == {key for i in PAGES for key in _keys(i)}
    # Each materialization counts the rows its partition holds (Dagster's row count).
    metadata_rows = {
        m.partition: m.metadata["dagster/row_count"].value
        for m in _materializations(result, CONTENT_METADATA)
    }
    for integration_id, page in PAGES.items():  # metadata D holds D's whole window
        for day in DAYS:
            key = ContentPartition(day, integration_id).key
            assert metadata_rows[key] == len(_expected_posts(page, _window(day)))
    metrics_rows = [
        m.metadata["dagster/row_count"].value
        for m in _materializations(result, CONTENT_DAILY_METRICS)
    ]
    assert sum(metrics_rows) == len(metric_rows)

    before = (content, metric_rows)
    assert _materialize(env).success
    assert (
        _rows(engine, tables.content_items),
        _rows(engine, tables.content_metrics_daily),
    ) == before


def test_metric_values_match_the_platform_and_null_is_not_zero(env):
    assert _materialize(env, ["fb-1"]).success
    posts = {p.id: p for p in _expected_posts(PAGES["fb-1"], LISTED_DAYS)}
    table = tables.content_metrics_daily
    with env["engine"].connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.metric_date == END)).mappings().all()
    assert rows
    saw_null_shares = saw_zero_clicks = False
    for row in rows:
        truth = sandbox_data.metrics_for(posts[row["external_content_id"]], TODAY)
        assert row["value_kind"] == "lifetime_snapshot"
        assert row["comments"] == truth.comments
        # Graph omits `shares` when there are none: the platform said nothing -> NULL.
        assert row["shares"] == (truth.shares or None)
        assert row["impressions"] is None  # deprecated metric, not requested
        if sandbox_data.insights_available(posts[row["external_content_id"]], _now()):
            assert row["views"] == truth.media_view
            assert row["reach"] == truth.media_view_unique
            assert row["clicks"] == truth.clicks
            saw_zero_clicks |= truth.clicks == 0
        saw_null_shares |= row["shares"] is None
    assert saw_null_shares and saw_zero_clicks, "data set lacks a NULL/0 case: widen the days"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_expired_token_fails_alone_after_exactly_one_attempt(env, caplog):
    sandbox = env["sandbox"]
    sandbox.faults.expire_token(PAGES["fb-2"])
    caplog.set_level(logging.DEBUG)
    result = _materialize(env)

    assert not result.success
    instance = env["instance"]
    for asset_key in (CONTENT_METADATA, CONTENT_DAILY_METRICS):
        assert _statuses(instance, asset_key, _keys("fb-1") + _keys("fb-3")) == {
            dg.AssetPartitionStatus.MATERIALIZED
        }
        assert _statuses(instance, asset_key, _keys("fb-2")) == {dg.AssetPartitionStatus.FAILED}
    assert sandbox.request_count(page_id=PAGES["fb-2"]) == 1

    with env["engine"].connect() as conn:
        integration = wh.get_integration(conn, "fb-2")
        failures = wh.open_failures(conn, "fb-2")
        assert wh.get_integration(conn, "fb-1").status == "active"
    assert integration.status == "needs_reauth"
    assert "190" in (integration.status_reason or "")
    assert failures[0].error_class == "permanent_credential"
    assert failures[0].platform_code == "190/463"  # code/subcode

    # Re-running does not call the platform again for the integration that needs re-auth.
    _materialize(env)
    assert sandbox.request_count(page_id=PAGES["fb-2"]) == 1
    _assert_token_absent(env, caplog, result)


def test_transient_errors_then_success_lands(env):
    sandbox = env["sandbox"]
    sandbox.faults.fail_next(PAGES["fb-1"], 2)
    result = _materialize(env, ["fb-1"])
    assert result.success
    statuses = [r.status for r in sandbox.requests(page_id=PAGES["fb-1"])]
    assert sum(status >= 400 for status in statuses) == 2
    with env["engine"].connect() as conn:
        assert wh.open_failures(conn, "fb-1") == []
    expected = {p.id for p in _expected_posts(PAGES["fb-1"], LISTED_DAYS)}
    assert {r[3] for r in _rows(env["engine"], tables.content_items)} == expected


def test_a_deleted_post_is_skipped_and_the_rest_of_its_day_lands(env):
    posts = [p for p in _expected_posts(PAGES["fb-1"]) if p.created_time.date() < END]
    assert len(posts) >= 2
    deleted = posts[0]
    env["sandbox"].faults.delete_post(deleted.id)
    result = _materialize(env, ["fb-1"])
    assert result.success
    table = tables.content_metrics_daily
    with env["engine"].connect() as conn:
        on_end = set(
            conn.scalars(sa.select(table.c.external_content_id).where(table.c.metric_date == END))
        )
        failures = wh.open_failures(conn, "fb-1")
    assert deleted.id not in on_end
    assert {p.id for p in posts[1:]} <= on_end
    assert {f.error_class for f in failures} == {"permanent_object"}
    assert any(deleted.id in f.message for f in failures)


def test_a_deprecated_metric_is_reported_and_the_others_still_land(env):
    resources = dict(env["resources"])
    resources["platforms"] = _platforms(
        env["sandbox"],
        ANALYTICS_FACEBOOK_POST_METRICS="post_impressions,post_media_view,post_clicks",
    )
    result = _materialize(env, ["fb-1"], resources=resources)
    assert result.success
    recorded = [
        m.metadata
        for m in _materializations(result, CONTENT_DAILY_METRICS)
        if "rejected_metrics" in m.metadata
    ]
    assert recorded
    assert all(meta["rejected_metrics"].value == ["post_impressions"] for meta in recorded)
    table = tables.content_metrics_daily
    with env["engine"].connect() as conn:
        views = list(conn.scalars(sa.select(table.c.views).where(table.c.metric_date == END)))
    assert views and any(v is not None for v in views)


def test_old_days_are_materialized_as_not_recordable_without_api_calls(env):
    result = _materialize(env, ["fb-3"])
    assert result.success
    old = [
        m
        for m in _materializations(result, CONTENT_DAILY_METRICS)
        if dt.date.fromisoformat(str(m.partition).split("|")[0]) not in _recordable_days()
    ]
    assert len(old) == len(DAYS) - len(_recordable_days())
    for materialization in old:
        assert materialization.metadata["recordable"].value == "False"
        assert materialization.metadata["api_calls"].value == 0


def _materializations(result, asset_key) -> list[dg.AssetMaterialization]:
    return [
        event.step_materialization_data.materialization
        for event in result.get_asset_materialization_events()
        if event.step_materialization_data.materialization.asset_key == asset_key
    ]


def _assert_token_absent(env, caplog, result) -> None:
    haystacks = [caplog.text]
    haystacks.extend(repr(record) for record in env["instance"].all_logs(result.run_id))
    with env["engine"].connect() as conn:
        haystacks.extend(f.message for f in wh.open_failures(conn))
        haystacks.extend(str(i.status_reason) for i in wh.list_integrations(conn))
    # The search must be able to see HTTP traffic at all, or finding nothing proves nothing.
    assert "analytics_pipeline.http" in caplog.text
    leaks = [text[:80] for text in haystacks if TOKEN in text]
    assert not leaks, f"token leaked into {len(leaks)} place(s)"


def test_a_sunset_api_version_fails_fast_naming_the_setting_without_blaming_the_token(env):
    env["sandbox"].faults.update(sunset_api_versions=["v25.0"])
    result = _materialize(env, ["fb-1"])
    assert not result.success
    assert env["sandbox"].request_count(page_id=PAGES["fb-1"]) == 1
    with env["engine"].connect() as conn:
        integration = wh.get_integration(conn, "fb-1")
        failures = wh.open_failures(conn, "fb-1")
    assert integration.status == "active"  # the token is fine: configuration is not
    # One row per failed partition (issue 10: every failure is counted), all of this class.
    assert len(failures) == len(DAYS) * 3
    assert {failure.error_class for failure in failures} == {"permanent_config"}
    assert all("ANALYTICS_FACEBOOK_API_VERSION" in failure.message for failure in failures)


def test_an_unexpected_error_in_one_integration_does_not_hide_the_others(env, monkeypatch):
    from analytics_pipeline.defs import integration_run as ingestion

    real = ingestion.ingest_integration

    def flaky(engine, factory, request, options):
        if request.integration_id == "fb-2":
            raise RuntimeError(f"warehouse went away (token {TOKEN})")
        return real(engine, factory, request, options)

    monkeypatch.setattr(ingestion, "ingest_integration", flaky)
    result = _materialize(env)
    assert not result.success
    instance = env["instance"]
    assert _statuses(instance, CONTENT_METADATA, _keys("fb-1") + _keys("fb-3")) == {
        dg.AssetPartitionStatus.MATERIALIZED
    }
    assert _statuses(instance, CONTENT_METADATA, _keys("fb-2")) == {dg.AssetPartitionStatus.FAILED}
    logs = " ".join(repr(r) for r in instance.all_logs(result.run_id))
    assert "warehouse went away" in logs and TOKEN not in logs


def test_an_error_midway_keeps_what_landed_and_fails_only_the_rest(env, monkeypatch):
    """Outcomes stream back per partition: a crash after the first metadata days leaves those
    days materialized and fails only the partitions that never landed."""
    from analytics_pipeline.defs import integration_run as ingestion

    real = ingestion.ingest_integration

    def crashes_after_three(engine, factory, request, options):
        # At the fourth metadata day of fb-2, in every attempt (step retries redo only what
        # has not landed, so a crash tied to a count would move on).
        for outcome in real(engine, factory, request, options):
            if request.integration_id == "fb-2" and outcome.day >= DAYS[3]:
                raise RuntimeError("warehouse went away midway")
            yield outcome

    monkeypatch.setattr(ingestion, "ingest_integration", crashes_after_three)
    result = _materialize(env)
    assert not result.success
    instance = env["instance"]
    fb2 = _keys("fb-2")
    assert _statuses(instance, CONTENT_METADATA, fb2[:3]) == {dg.AssetPartitionStatus.MATERIALIZED}
    assert _statuses(instance, CONTENT_METADATA, fb2[3:]) == {dg.AssetPartitionStatus.FAILED}
    assert _statuses(instance, CONTENT_DAILY_METRICS, fb2) == {dg.AssetPartitionStatus.FAILED}
    assert _statuses(instance, CONTENT_METADATA, _keys("fb-1") + _keys("fb-3")) == {
        dg.AssetPartitionStatus.MATERIALIZED
    }


def test_a_paused_integration_is_skipped_without_calls_and_without_failing_the_run(env):
    with env["engine"].begin() as conn:
        wh.set_integration_status(conn, "fb-3", "paused", "offboarding", dt.datetime.now(dt.UTC))
    result = _materialize(env)
    assert result.success
    assert env["sandbox"].request_count(page_id=PAGES["fb-3"]) == 0
    materialized = env["instance"].get_materialized_partitions(CONTENT_METADATA)
    assert materialized == {key for i in ("fb-1", "fb-2") for key in _keys(i)}


def test_a_job_backfill_run_materializes_its_whole_range(env):
    """A backfill launched from the job's page makes range runs that also carry ONE partition's
    per-dimension tags (Dagster 1.13); the step must still work on the whole range."""
    definitions = dg.Definitions(
        assets=[social_ingestion], jobs=[ingestion_job], resources=env["resources"]
    )
    job = definitions.resolve_job_def("ingestion_job")
    single = ContentPartition(START, "fb-1")
    result = job.execute_in_process(
        instance=env["instance"],
        tags={
            **range_run_tags(START, END, list(PAGES)),
            "dagster/partition/date": single.day.isoformat(),
            "dagster/partition/integration": single.integration_id,
        },
        raise_on_error=False,
    )
    assert result.success
    for asset_key in (CONTENT_METADATA, CONTENT_DAILY_METRICS):
        materialized = env["instance"].get_materialized_partitions(asset_key)
        assert materialized == {key for i in PAGES for key in _keys(i)}
