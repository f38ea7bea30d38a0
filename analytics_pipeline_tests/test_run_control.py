"""Issue 10, the run side, in process against the sandbox: a retry redoes only what failed, every
failure is counted, rate-limit pauses have a budget per run, rejected metrics get a row.

Figures (requests, events, rows) are counted by the sandbox and the Dagster instance, and
compared with a clean reference run, never with numbers written into the test.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter

import dagster as dg
import pytest
import sqlalchemy as sa

from analytics_pipeline import ingest
from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs import integration_run
from analytics_pipeline.defs.assets import social_ingestion
from analytics_pipeline.defs.partitions import INTEGRATIONS_PARTITIONS_NAME, range_run_tags
from analytics_pipeline.defs.resources import PlatformsResource, WarehouseResource
from analytics_pipeline.records import AssetName, ContentPartition
from analytics_pipeline.warehouse import tables
from analytics_pipeline_tests.helpers import (
    facebook_sandbox_platforms,
    facebook_warehouse,
)
from analytics_sandbox.server import SandboxServer

TOKEN_ENV = "ANALYTICS_TEST_RUN_TOKEN"
TOKEN = "tok-SECRET-run-5b1e7c2a"
PAGES = {"fb-1": "1000001", "fb-2": "1000002", "fb-3": "1000003"}
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY - dt.timedelta(days=1)
START = END - dt.timedelta(days=6)
DAYS = [START + dt.timedelta(days=n) for n in range(7)]
RUN_AT = dt.datetime.combine(TODAY, dt.time(1, 30), tzinfo=dt.UTC)
ASSETS = [asset.value for asset in AssetName]


def _platforms(sandbox: SandboxServer, **overrides: str) -> PlatformsResource:
    return facebook_sandbox_platforms(
        sandbox.base_url, **{"ANALYTICS_HTTP_MAX_ATTEMPTS": "2", **overrides}
    )


@pytest.fixture(scope="module")
def sandbox():
    with SandboxServer() as server:
        yield server


@pytest.fixture
def env(sandbox, tmp_path, monkeypatch):
    url, engine = facebook_warehouse(
        tmp_path, monkeypatch, sandbox, (TOKEN_ENV, TOKEN), PAGES, RUN_AT, "org-run"
    )
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, list(PAGES))
        yield {
            "engine": engine,
            "instance": instance,
            "sandbox": sandbox,
            "resources": {
                "warehouse": WarehouseResource(url=url),
                "platforms": _platforms(sandbox),
            },
        }
    engine.dispose()


def _materialize(env, integration_ids=tuple(PAGES), platforms=None):
    resources = dict(env["resources"])
    if platforms is not None:
        resources["platforms"] = platforms
    return dg.materialize(
        [social_ingestion],
        instance=env["instance"],
        resources=resources,
        tags=range_run_tags(START, END, list(integration_ids)),
        raise_on_error=False,
    )


def _requests_per_page(sandbox: SandboxServer) -> dict[str, int]:
    return {iid: sandbox.request_count(page_id=page) for iid, page in PAGES.items()}


def _events(result, event_type: dg.DagsterEventType) -> list[dg.DagsterEvent]:
    return [event for event in result.all_events if event.event_type == event_type]


def _partitions(integration_id: str) -> set[str]:
    return {
        f"{asset}:{ContentPartition(day, integration_id).key}" for asset in ASSETS for day in DAYS
    }


def _failure_rows(engine: sa.Engine, run_id: str) -> list[wh.FailureRecord]:
    with engine.connect() as conn:
        return [f for f in wh.open_failures(conn) if f.run_id == run_id]


def _failure_metadata(result) -> dict:
    (failure,) = _events(result, dg.DagsterEventType.STEP_FAILURE)
    metadata = failure.step_failure_data.user_failure_data.metadata
    return {name: entry.value for name, entry in metadata.items()}


def test_step_retries_refetch_only_the_failing_integration(env):
    sandbox = env["sandbox"]
    sandbox.faults.fail_next(PAGES["fb-2"], 100_000)  # persistent transient errors
    result = _materialize(env)
    assert not result.success
    retries = len(_events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY))
    assert retries == 2  # ANALYTICS_STEP_MAX_RETRIES: the faulty integration was retried
    faulty_run = _requests_per_page(sandbox)
    landed = Counter(
        (event.asset_key.to_user_string(), event.partition)
        for event in _events(result, dg.DagsterEventType.ASSET_MATERIALIZATION)
    )

    # The clean reference: the same healthy integrations alone, nothing failing.
    sandbox.reset()
    reference = _materialize(env, ["fb-1"])
    assert reference.success
    reference_fb1 = sandbox.request_count(page_id=PAGES["fb-1"])
    sandbox.reset()
    assert _materialize(env, ["fb-3"]).success
    reference_fb3 = sandbox.request_count(page_id=PAGES["fb-3"])

    print(
        f"requests with fb-2 failing ({retries} step retries): {faulty_run}; "
        f"clean: fb-1 {reference_fb1}, fb-3 {reference_fb3}"
    )
    # One round of requests for each healthy integration however often fb-2 was retried.
    assert faulty_run["fb-1"] == reference_fb1 > 0
    assert faulty_run["fb-3"] == reference_fb3 > 0
    assert faulty_run["fb-2"] > 0
    # Each healthy partition materialized exactly once, none of the faulty one.
    healthy = {tuple(label.split(":", 1)) for label in _partitions("fb-1") | _partitions("fb-3")}
    assert set(landed) == healthy
    assert set(landed.values()) == {1}


def test_every_failed_partition_of_an_expired_token_has_a_row(env):
    env["sandbox"].faults.expire_token(PAGES["fb-2"])
    result = _materialize(env, ["fb-2"])
    assert not result.success
    rows = _failure_rows(env["engine"], result.run_id)
    assert {f"{row.asset}:{row.partition_key}" for row in rows} == _partitions("fb-2")
    assert len(rows) == len(_partitions("fb-2"))
    assert {row.error_class for row in rows} == {"permanent_credential"}
    metadata = _failure_metadata(result)
    assert set(metadata["failed_partitions"]) == _partitions("fb-2")
    assert set(metadata["failure_classes"].values()) == {"permanent_credential"}
    assert metadata["without_failure_row"] == []

    # A later run fails without a request, and still counts every partition.
    env["sandbox"].reset()
    again = _materialize(env, ["fb-2"])
    assert env["sandbox"].request_count(page_id=PAGES["fb-2"]) == 0
    assert len(_failure_rows(env["engine"], again.run_id)) == len(_partitions("fb-2"))


def test_failure_rows_the_warehouse_refused_are_written_at_step_end(env, monkeypatch):
    """The warehouse is away when the failures happen and back when the step ends."""

    def warehouse_away(*_args, **_kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("connection refused"))

    monkeypatch.setattr(ingest._IntegrationWorker, "_write_failure", warehouse_away)
    env["sandbox"].faults.expire_token(PAGES["fb-1"])
    result = _materialize(env, ["fb-1"])
    assert not result.success
    rows = _failure_rows(env["engine"], result.run_id)
    assert {f"{row.asset}:{row.partition_key}" for row in rows} == _partitions("fb-1")


def test_failure_rows_that_cannot_be_written_are_named(tmp_path):
    # A SQLite file in a directory that does not exist: every connection attempt fails.
    unreachable = sa.create_engine(f"sqlite:///{tmp_path / 'missing' / 'warehouse.sqlite'}")
    outcome = ingest.stopped_outcome(AssetName.CONTENT_METADATA, ContentPartition(DAYS[0], "fb-1"))
    slept: list[float] = []
    left = ingest.record_failures(unreachable, [outcome], "run-1", patience_s=3, sleep=slept.append)
    assert left == [outcome]
    assert slept  # it tried again before giving up


def test_rate_limit_pauses_beyond_the_run_budget_are_deferred_not_retried(env):
    env["sandbox"].faults.rate_limit_usage_pct = 95
    platforms = _platforms(
        env["sandbox"],
        ANALYTICS_FACEBOOK_USAGE_MAX_PAUSE_S="30",
        ANALYTICS_MAX_RATE_LIMIT_WAIT_S="1",
    )
    result = _materialize(env, ["fb-1"], platforms=platforms)
    assert not result.success
    assert _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY) == []
    metadata = _failure_metadata(result)
    assert metadata["retryable"] is False
    assert set(metadata["failure_classes"].values()) == {"transient (deferred)"}
    rows = _failure_rows(env["engine"], result.run_id)
    assert {f"{row.asset}:{row.partition_key}" for row in rows} == set(
        metadata["failed_partitions"]
    )
    assert any("ANALYTICS_MAX_RATE_LIMIT_WAIT_S" in row.message for row in rows)


def test_the_wait_budget_caps_the_run_not_each_step_attempt(env, monkeypatch):
    """fb-2 fails on every request, so the step is retried twice; fb-1's requests pause under
    usage headers. Every attempt's pauses count against ONE budget: the run's total waits
    (left on the run as a tag) never exceed it, and a retry starts from what was spent."""
    from analytics_pipeline.platforms.http import Pacer

    started_from: list[float] = []
    original = Pacer.__init__

    def recording_init(self, stop, wait_budget_s=None, waited_s=0.0):
        started_from.append(waited_s)
        original(self, stop, wait_budget_s, waited_s)

    monkeypatch.setattr(Pacer, "__init__", recording_init)
    env["sandbox"].faults.rate_limit_usage_pct = 95
    env["sandbox"].faults.fail_next(PAGES["fb-2"], 100_000)
    platforms = _platforms(
        env["sandbox"],
        ANALYTICS_FACEBOOK_USAGE_MAX_PAUSE_S="0.2",
        ANALYTICS_MAX_RATE_LIMIT_WAIT_S="600",
    )
    result = _materialize(env, ["fb-1", "fb-2"], platforms=platforms)
    assert not result.success
    assert len(_events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)) == 2
    run = env["instance"].get_run_by_id(result.run_id)
    waited = float(run.tags[integration_run.WAITED_TAG])
    assert waited > 0
    # Attempt 1 starts from nothing, each retry from what the attempts before it waited.
    assert len(started_from) == 3 and started_from[0] == 0
    assert 0 < started_from[1] <= started_from[2] <= waited <= 600


def test_a_rejected_metric_gets_one_row_per_integration_and_run(env):
    platforms = _platforms(
        env["sandbox"],
        ANALYTICS_FACEBOOK_POST_METRICS="post_impressions,post_media_view,post_clicks",
    )
    result = _materialize(env, ["fb-1", "fb-2"], platforms=platforms)
    assert result.success
    with env["engine"].connect() as conn:
        rows = conn.execute(
            sa.select(tables.ingestion_failures).where(
                tables.ingestion_failures.c.error_class == "rejected_metric"
            )
        ).all()
    assert sorted((row.integration_id, row.platform_code) for row in rows) == [
        ("fb-1", "post_impressions"),
        ("fb-2", "post_impressions"),
    ]
    assert {row.run_id for row in rows} == {result.run_id}
    assert all(row.resolved_at is None for row in rows)


def test_an_interrupt_dagster_turned_into_a_retry_ends_the_retry_at_once(env, monkeypatch):
    """An interrupt that escapes the step's code (here: before its run of integrations) is
    turned into a retry by its RetryPolicy; the retry must stop at once, not start over."""
    from analytics_pipeline.defs import assets

    calls: list[int] = []

    def interrupted(context):
        calls.append(1)
        raise dg.DagsterExecutionInterruptedError()

    monkeypatch.setattr(assets, "step_partition_keys", interrupted)
    result = _materialize(env)
    assert not result.success
    assert len(_events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)) == 1
    assert calls == [1]  # the retry did no work
    assert env["sandbox"].request_count() == 0
    (failure,) = _events(result, dg.DagsterEventType.STEP_FAILURE)
    assert "stopped" in failure.step_failure_data.error.message


def test_an_interrupt_in_the_steps_loop_stops_it_without_a_retry(env, monkeypatch):
    """Dagster's interrupt landing in the step's code outside the run's wait (after an outcome
    was recorded): the step fails once, as stopped, never retried; the rest is settled after
    the run (defs/settle.py)."""
    from analytics_pipeline.defs import integration_run

    real = integration_run.IntegrationRun.outcomes

    def interrupted(self, partition_keys):
        outcomes = real(self, partition_keys)
        yield next(outcomes)
        outcomes.close()
        raise dg.DagsterExecutionInterruptedError()

    monkeypatch.setattr(integration_run.IntegrationRun, "outcomes", interrupted)
    result = _materialize(env)
    assert not result.success
    assert len(_events(result, dg.DagsterEventType.STEP_START)) == 1
    assert not _events(result, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert len(_events(result, dg.DagsterEventType.ASSET_MATERIALIZATION)) == 1
    metadata = _failure_metadata(result)
    assert metadata["stopped"] is True and metadata["retryable"] is False


def _reexecutable_job() -> dg.JobDefinition:
    """The ingestion job with its resources from the environment, executed in process (a
    module-level function, so that Dagster can reconstruct it for a re-execution)."""
    from analytics_pipeline.definitions import resources_from_env
    from analytics_pipeline.defs.automation import ingestion_job

    definitions = dg.Definitions(
        assets=[social_ingestion],
        jobs=[ingestion_job],
        resources=resources_from_env(),
        executor=dg.in_process_executor,
    )
    return definitions.resolve_job_def("ingestion_job")


def test_a_reexecution_from_failure_fetches_only_what_failed(env, monkeypatch, tmp_path):
    sandbox = env["sandbox"]
    monkeypatch.setenv("ANALYTICS_WAREHOUSE_URL", env["resources"]["warehouse"].url)
    monkeypatch.setenv("ANALYTICS_FACEBOOK_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("ANALYTICS_HTTP_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("ANALYTICS_HTTP_BACKOFF_BASE_S", "0.001")
    monkeypatch.setenv("ANALYTICS_FACEBOOK_USAGE_MAX_PAUSE_S", "0.01")
    job = dg.reconstructable(_reexecutable_job)
    instance = env["instance"]
    sandbox.faults.fail_next(PAGES["fb-2"], 100_000)
    with dg.execute_job(
        job, instance, tags=range_run_tags(START, END, list(PAGES)), raise_on_error=False
    ) as first:
        assert not first.success
        first_run_id = first.run_id
    sandbox.reset()  # the fault clears, the request log starts again
    options = dg.ReexecutionOptions.from_failure(first_run_id, instance)
    # The UI's "Re-execute from failure" keeps the parent's tags (its partition range) too.
    with dg.execute_job(
        job,
        instance,
        tags=range_run_tags(START, END, list(PAGES)),
        reexecution_options=options,
        raise_on_error=False,
    ) as again:
        assert again.success
        landed = {
            (event.asset_key.to_user_string(), event.partition)
            for event in again.all_events
            if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        }
    assert _requests_per_page(sandbox)["fb-1"] == 0
    assert _requests_per_page(sandbox)["fb-3"] == 0
    assert _requests_per_page(sandbox)["fb-2"] > 0
    assert landed == {tuple(label.split(":", 1)) for label in _partitions("fb-2")}


def test_the_wait_budget_is_read_from_its_variable_and_validated():
    from analytics_pipeline.settings import SettingsError

    resource = PlatformsResource.from_env({"ANALYTICS_MAX_RATE_LIMIT_WAIT_S": "120"})
    assert resource.max_rate_limit_wait_s == 120
    assert resource.pacer(threading.Event()).wait_budget_s == 120
    with pytest.raises(SettingsError, match="ANALYTICS_MAX_RATE_LIMIT_WAIT_S='-1'"):
        PlatformsResource.from_env({"ANALYTICS_MAX_RATE_LIMIT_WAIT_S": "-1"})


def test_a_reexecution_skips_what_a_stopped_parent_committed_without_recording(env, monkeypatch):
    """A parent stopped by an interrupt in the step's loop committed more partitions than it
    recorded; a re-execution from failure neither fetches nor writes those again."""
    from analytics_pipeline.defs import integration_run

    sandbox = env["sandbox"]
    monkeypatch.setenv("ANALYTICS_WAREHOUSE_URL", env["resources"]["warehouse"].url)
    monkeypatch.setenv("ANALYTICS_FACEBOOK_BASE_URL", sandbox.base_url)
    job = dg.reconstructable(_reexecutable_job)
    instance = env["instance"]
    real = integration_run.IntegrationRun.outcomes

    def interrupted(self, partition_keys):
        outcomes = real(self, partition_keys)
        yield next(outcomes)
        time.sleep(0.5)  # the workers commit ahead of what the step records
        outcomes.close()
        raise dg.DagsterExecutionInterruptedError()

    tags = range_run_tags(START, END, list(PAGES))
    integration_run.IntegrationRun.outcomes = interrupted  # type: ignore[method-assign]
    try:
        with dg.execute_job(job, instance, tags=tags, raise_on_error=False) as first:
            assert not first.success
            parent = first.run_id
    finally:
        integration_run.IntegrationRun.outcomes = real  # type: ignore[method-assign]
    with env["engine"].connect() as conn:
        committed = set(wh.run_ledger(conn, parent).loads)
    recorded = {
        f"{e.asset_materialization.asset_key.to_user_string()}:{e.asset_materialization.partition}"
        for e in instance.all_logs(parent)
        if e.asset_materialization is not None
    }
    assert len(committed) > len(recorded) == 1, "nothing committed without being recorded"
    options = dg.ReexecutionOptions.from_failure(parent, instance)
    with dg.execute_job(
        job, instance, tags=tags, reexecution_options=options, raise_on_error=False
    ) as again:
        assert again.success
        landed = {
            f"{event.asset_key.to_user_string()}:{event.partition}"
            for event in again.all_events
            if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
        }
    every = set().union(*(_partitions(page) for page in PAGES))
    assert landed == every - committed
