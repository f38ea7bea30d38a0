"""Issue 4 harness: the pipeline through Dagster vs the old design, one JSON line per scenario.

    .venv/bin/python -m benchmarks.harness --scenario small [--latency-ms 50] [--quick]
    .venv/bin/python -m benchmarks.harness --scenario warehouse [--rows 1000000]
    .venv/bin/python -m benchmarks.harness --scenario ranges [--days 90]

`ranges` counts what old days cost per platform (range listing + account range request of one
account, default client settings; `benchmarks.range_requests`): requests only, no timing.

API scenarios (small, daily, backfill) run in ONE process against ONE sandbox in a process of its
own (`benchmarks.remote_sandbox`, 127.0.0.1, `SandboxConfig(posts_per_day=(P, P))`, `latency_ms`
per request), so the platforms' side costs the measured process nothing, as in production:
1. the pipeline: `dg.materialize([social_ingestion])` over the range (one single-run backfill
   run, `range_run_tags`) on a temp Dagster instance and an empty SQLite warehouse;
2. the baseline (`benchmarks.baseline`): per-post requests, one commit per row, sequential, on
   its own empty SQLite warehouse, over the same integrations and days;
3. at latency 0, the same pipeline work twice on fresh warehouses: called directly
   (`ingest_integration` on the same thread pool, no Dagster) and through Dagster; the
   difference divided by the partitions is `per_partition_overhead_ms`.
Both warehouses get the same seed first: the content items of the `lookback - 1` days before
the range (what earlier runs would have stored), so a metrics day sees a full lookback window.
See benchmarks/README.md ("Issue 4 harness") for every output field.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs.assets import social_ingestion
from analytics_pipeline.defs.partitions import (
    INTEGRATIONS_PARTITIONS_NAME,
    SETTINGS,
    range_run_tags,
)
from analytics_pipeline.defs.resources import PlatformsResource, WarehouseResource
from analytics_pipeline.ingest import (
    IngestOptions,
    IntegrationRequest,
    ingest_integration,
    snapshot_day,
)
from analytics_pipeline.platforms.facebook import PAGE_INSIGHTS_CHUNK_DAYS, FacebookSettings
from analytics_pipeline.platforms.graph import GRAPH_BATCH_LIMIT
from analytics_pipeline.records import AssetName, ContentFormat, ContentItem, ContentPartition
from analytics_pipeline.warehouse.migrations import migrate
from analytics_pipeline.warehouse.tables import (
    account_metrics_daily,
    content_items,
    content_metrics_daily,
    partition_loads,
)
from analytics_sandbox import data as sandbox_data
from analytics_sandbox.data import SandboxConfig
from benchmarks import range_requests, warehouse_bulk
from benchmarks.baseline import Baseline, BaselineIntegration, iter_days
from benchmarks.remote_sandbox import RemoteSandbox

TOKEN_ENV = "BENCH_FB_TOKEN"  # noqa: S105 (the variable's NAME)
TOKEN = "bench-sandbox-token"  # noqa: S105 (the sandbox accepts any token)
ORG = "bench"
FIRST_PAGE = 1_000_001
LISTING_PAGE_SIZE = FacebookSettings().page_size
DATA_TABLES = (content_items, content_metrics_daily, account_metrics_daily)
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SNAPSHOT_CUTOFF = dt.timedelta(hours=SETTINGS.snapshot_cutoff_hours)

# name -> (integrations, days); --quick -> the scaled-down shape
FULL = {"small": (5, 7), "daily": (1000, 1), "backfill": (100, 90)}
QUICK = {"small": (5, 7), "daily": (100, 1), "backfill": (20, 30)}


def log(message: str) -> None:
    print(f"[harness {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ memory


def reset_peak_rss() -> bool:
    """Resets this process's VmHWM (Linux >= 4.0: writing 5 to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float:
    """VmHWM since the last reset (else ru_maxrss, the peak since the process started)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ------------------------------------------------------------------------------ the world


@dataclass(frozen=True)
class Shape:
    name: str
    integrations: int
    days: int
    posts_per_day: int
    latency_ms: int
    scaled: bool

    @property
    def ids(self) -> list[str]:
        return [f"bench-fb-{n:05d}" for n in range(self.integrations)]

    def page(self, integration_id: str) -> str:
        return str(FIRST_PAGE + int(integration_id.rsplit("-", 1)[1]))

    @property
    def end(self) -> dt.date:
        """The current snapshot day: the range's last day records lifetime metrics."""
        return snapshot_day(dt.datetime.now(dt.UTC), SNAPSHOT_CUTOFF)

    @property
    def start(self) -> dt.date:
        return self.end - dt.timedelta(days=self.days - 1)

    @property
    def day_list(self) -> list[dt.date]:
        return list(iter_days(self.start, self.end))

    @property
    def seed_days(self) -> list[dt.date]:
        first = max(
            self.start - dt.timedelta(days=SETTINGS.lookback_days - 1), self.partitions_start
        )
        return list(iter_days(first, self.start - dt.timedelta(days=1)))

    @property
    def partitions_start(self) -> dt.date:
        return SETTINGS.partitions_start_date

    @property
    def recordable_days(self) -> list[dt.date]:
        return [self.end]


_FORMATS = {
    sandbox_data.PostFormat.PHOTO: ContentFormat.POST,
    sandbox_data.PostFormat.VIDEO: ContentFormat.VIDEO,
    sandbox_data.PostFormat.REEL: ContentFormat.REEL,
    sandbox_data.PostFormat.ALBUM: ContentFormat.CAROUSEL,
    sandbox_data.PostFormat.LINK: ContentFormat.LINK,
    sandbox_data.PostFormat.TEXT: ContentFormat.TEXT,
}


def new_warehouse(tmp: Path, name: str, shape: Shape, config: SandboxConfig) -> str:
    """An empty migrated SQLite warehouse with the integrations and the seeded window."""
    url = f"sqlite:///{tmp / f'{name}.sqlite'}"
    engine = wh.make_engine(url)
    try:
        migrate(engine)
        now = dt.datetime.now(dt.UTC)
        with engine.begin() as conn:
            for integration_id in shape.ids:
                wh.add_integration(
                    conn,
                    organization_id=ORG,
                    integration_id=integration_id,
                    platform="facebook",
                    external_account_id=shape.page(integration_id),
                    display_name=integration_id,
                    credential_env=TOKEN_ENV,
                    now=now,
                )
        for integration_id in shape.ids:
            items = [
                ContentItem(
                    external_content_id=post.id,
                    format=_FORMATS[post.format],
                    published_at=post.created_time,
                    caption=post.message,
                    permalink=post.permalink_url,
                )
                for day in shape.seed_days
                for post in sandbox_data.posts_for_day(shape.page(integration_id), day, config)
            ]
            with engine.begin() as conn:
                wh.upsert_content_items(
                    conn,
                    organization_id=ORG,
                    integration_id=integration_id,
                    platform="facebook",
                    items=items,
                    now=now,
                )
    finally:
        engine.dispose()
    return url


def data_rows(url: str) -> int:
    engine = wh.make_engine(url)
    try:
        with engine.connect() as conn:
            return sum(
                int(conn.scalar(sa.select(sa.func.count()).select_from(t)) or 0)
                for t in DATA_TABLES
            )
    finally:
        engine.dispose()


def metrics_calls_by_partition(url: str) -> dict[str, int]:
    """api_calls of each recordable metrics partition, from the pipeline's own ledger."""
    engine = wh.make_engine(url)
    try:
        with engine.connect() as conn:
            query = sa.select(
                partition_loads.c.integration_id,
                partition_loads.c.partition_date,
                partition_loads.c.details,
            ).where(partition_loads.c.asset == AssetName.CONTENT_DAILY_METRICS)
            return {
                ContentPartition(row.partition_date, row.integration_id).key: int(
                    row.details.get("api_calls", 0)
                )
                for row in conn.execute(query)
                if row.details.get("recordable", True)
            }
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ lower bound


def lower_bound(shape: Shape, config: SandboxConfig, now: dt.datetime) -> dict[str, Any]:
    """Requests a correct partitioned client minimally needs (see the README for the formula).

    Per integration and run: ONE range listing of every window the run's days need
    (ceil(posts / page size) pages, at least 1) and ONE account batch (page insights of every
    day, 89 days per batch item, plus the followers snapshot in the same batch), and ONE token
    check (`debug_token` in a batch: when the token expires). Per recordable
    metrics day: ceil(batch items / 50), a post being one batch item and a reel two (its post
    fields + its `video_insights`, which Graph cannot merge). `issue_metrics_target` is issue
    4's target per metrics day: ceil(items / 50) + 1. Posts published after `now` (later
    today) are not listed yet and do not count.
    """
    listing = account = metrics = target = 0
    window_days = [*shape.seed_days, *shape.day_list]
    for integration_id in shape.ids:
        page = shape.page(integration_id)
        posts = {
            d: [p for p in sandbox_data.posts_for_day(page, d, config) if p.created_time <= now]
            for d in window_days
        }
        listed = sum(len(day_posts) for day_posts in posts.values())
        listing += max(1, math.ceil(listed / LISTING_PAGE_SIZE))
        account += math.ceil(math.ceil(shape.days / PAGE_INSIGHTS_CHUNK_DAYS) / GRAPH_BATCH_LIMIT)
        for day in shape.recordable_days:
            first = day - dt.timedelta(days=SETTINGS.lookback_days - 1)
            items = [p for d in window_days if first <= d <= day for p in posts[d]]
            reels = sum(p.format is sandbox_data.PostFormat.REEL for p in items)
            metrics += math.ceil((len(items) + reels) / GRAPH_BATCH_LIMIT)
            target += math.ceil(len(items) / GRAPH_BATCH_LIMIT) + 1
    old_days = shape.integrations * (shape.days - len(shape.recordable_days))
    token_check = len(shape.ids)  # one debug_token batch per integration per run (Meta expiry)
    return {
        "total": listing + account + metrics + token_check,
        "listing": listing,
        "account": account,
        "token_check": token_check,
        "metrics": metrics,
        "issue_metrics_target": target,
        "old_integration_days": old_days,
    }


# ------------------------------------------------------------------------------ the runs


@contextlib.contextmanager
def progress(what: str, sandbox: RemoteSandbox, every_s: float = 20.0) -> Iterator[None]:
    """Prints the sandbox's request count to stderr while a long step runs."""
    done = threading.Event()

    def report() -> None:
        began = time.monotonic()
        while not done.wait(every_s):
            log(f"{what}: {time.monotonic() - began:.0f} s, {sandbox.request_count()} requests")

    thread = threading.Thread(target=report, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def platforms_resource(sandbox: RemoteSandbox) -> PlatformsResource:
    """Configured by the environment (as a deployment is), with Facebook at the sandbox."""
    return PlatformsResource.from_env(
        {**os.environ, "ANALYTICS_FACEBOOK_BASE_URL": sandbox.base_url}
    )


def run_dagster(shape: Shape, sandbox: RemoteSandbox, url: str) -> dict[str, Any]:
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, shape.ids)
        sandbox.clear_log()
        reset_peak_rss()
        started = time.perf_counter()
        result = dg.materialize(
            [social_ingestion],
            instance=instance,
            resources={
                "warehouse": WarehouseResource(url=url),
                "platforms": platforms_resource(sandbox),
            },
            tags=range_run_tags(shape.start, shape.end, shape.ids),
            run_config=QUIET,
            raise_on_error=False,
        )
        wall = time.perf_counter() - started
        runs = instance.get_runs_count()
        stats = instance.get_run_stats(result.run_id)
    executing = (stats.end_time or 0) - (stats.start_time or 0)
    return {
        "success": result.success,
        "wall_s": wall,
        "run_creation_s": wall - executing,
        "run_execution_s": executing,
        "requests": sandbox.request_count(),
        "peak_rss_mb": peak_rss_mb(),
        "dagster_runs": runs,
    }


def run_direct(shape: Shape, sandbox: RemoteSandbox, url: str) -> float:
    """The run's work without Dagster: `ingest_integration` on the same bounded thread pool."""
    engine = wh.make_engine(url)
    platforms = platforms_resource(sandbox)
    options = IngestOptions(
        lookback_days=SETTINGS.lookback_days,
        snapshot_cutoff=SNAPSHOT_CUTOFF,
        partitions_start=shape.partitions_start,
    )
    requests = [
        IntegrationRequest(i, shape.day_list, metadata=True, metrics=True, account=True)
        for i in shape.ids
    ]
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=platforms.max_concurrency) as pool:
            outcomes = [
                outcome
                for batch in pool.map(
                    lambda r: list(ingest_integration(engine, platforms.create_client, r, options)),
                    requests,
                )
                for outcome in batch
            ]
        wall = time.perf_counter() - started
    finally:
        engine.dispose()
    failed = [o for o in outcomes if o.status.value == "failed"]
    if failed:
        raise RuntimeError(f"direct run: {len(failed)} partition(s) failed: {failed[0].message}")
    return wall


def run_baseline(
    shape: Shape, sandbox: RemoteSandbox, url: str, sample: int
) -> tuple[dict[str, Any], Baseline]:
    engine = wh.make_engine(url)
    baseline = Baseline(
        engine,
        FacebookSettings(base_url=sandbox.base_url),
        TOKEN,
        lookback_days=SETTINGS.lookback_days,
        recordable_days=shape.recordable_days,
        partitions_start=shape.partitions_start,
    )
    sandbox.clear_log()
    reset_peak_rss()
    try:
        started = time.perf_counter()
        for n, integration_id in enumerate(shape.ids[:sample]):
            target = BaselineIntegration(ORG, integration_id, shape.page(integration_id))
            baseline.run(target, shape.day_list)
            if n % 10 == 9:
                log(f"baseline: {n + 1}/{sample} integrations, {baseline.stats.requests} requests")
        wall = time.perf_counter() - started
    finally:
        baseline.close()
        engine.dispose()
    return {
        "wall_s": wall,
        "requests": sandbox.request_count(),
        "peak_rss_mb": peak_rss_mb(),
    }, baseline


def _per_day(calls: dict[str, int]) -> dict[str, float | int | None]:
    values = list(calls.values())
    if not values:
        return {"partitions": 0, "mean": None, "max": None}
    return {
        "partitions": len(values),
        "mean": round(sum(values) / len(values), 2),
        "max": max(values),
    }


def api_scenario(shape: Shape, baseline_max: int, overhead: bool) -> dict[str, Any]:
    config = SandboxConfig(posts_per_day=(shape.posts_per_day, shape.posts_per_day))
    os.environ[TOKEN_ENV] = TOKEN
    sample = min(shape.integrations, baseline_max)
    scale = shape.integrations / sample
    with (
        tempfile.TemporaryDirectory(prefix="harness-") as tmp_text,
        RemoteSandbox(shape.posts_per_day) as sandbox,
    ):
        tmp = Path(tmp_text)
        log(f"{shape.name}: seeding warehouses ({len(shape.seed_days)} earlier day(s))")
        pipe_url = new_warehouse(tmp, "pipeline", shape, config)
        base_url = new_warehouse(tmp, "baseline", shape, config)
        rows_before = data_rows(pipe_url)
        bound = lower_bound(shape, config, dt.datetime.now(dt.UTC))
        sandbox.set_latency(shape.latency_ms)

        log(f"{shape.name}: pipeline through Dagster, latency {shape.latency_ms} ms")
        with progress("pipeline", sandbox):
            pipe = run_dagster(shape, sandbox, pipe_url)
        pipe_rows = data_rows(pipe_url) - rows_before
        metrics_calls = metrics_calls_by_partition(pipe_url)

        log(f"{shape.name}: baseline on {sample} of {shape.integrations} integration(s)")
        with progress("baseline", sandbox):
            base, baseline = run_baseline(shape, sandbox, base_url, sample)
        base_rows = data_rows(base_url) - rows_before  # both seeded alike

        per_partition_ms: float | None = None
        direct_s = dagster0_s = None
        if overhead:
            sandbox.set_latency(0)
            log(f"{shape.name}: latency 0, direct vs Dagster (per-partition overhead)")
            direct_s = run_direct(shape, sandbox, new_warehouse(tmp, "direct0", shape, config))
            dagster0 = run_dagster(shape, sandbox, new_warehouse(tmp, "dagster0", shape, config))
            dagster0_s = dagster0["wall_s"]
            per_partition_ms = (dagster0_s - direct_s) * 1000 / (shape.integrations * shape.days)

    latency_s = shape.latency_ms / 1000
    concurrency = PlatformsResource.from_env().max_concurrency
    base_requests = round(base["requests"] * scale)
    base_wall = base["wall_s"] * scale
    base_rows_scaled = round(base_rows * scale)
    pipe_rps = pipe_rows / pipe["wall_s"]
    base_rps = base_rows / base["wall_s"] if base["wall_s"] else 0.0
    pipe_bound_s = pipe["requests"] * latency_s / concurrency
    return {
        "scenario": shape.name,
        "scaled_down": shape.scaled,
        "integrations": shape.integrations,
        "days": shape.days,
        "posts_per_day": shape.posts_per_day,
        "latency_ms": shape.latency_ms,
        "max_concurrency": concurrency,
        "dates": f"{shape.start}..{shape.end}",
        "seeded_days_before_range": len(shape.seed_days),
        "recordable_metrics_days": [d.isoformat() for d in shape.recordable_days],
        "snapshot_cutoff_hours": SETTINGS.snapshot_cutoff_hours,
        "partitions": shape.integrations * shape.days,
        "success": pipe["success"],
        "api_requests": pipe["requests"],
        "api_requests_lower_bound": bound["total"],
        "api_requests_lower_bound_parts": bound,
        "api_requests_vs_lower_bound": round(pipe["requests"] / bound["total"], 3),
        "listing_and_account_requests_per_integration_day": round(
            (pipe["requests"] - sum(metrics_calls.values()) - bound["token_check"])
            / (shape.integrations * shape.days),
            3,
        ),
        "metrics_requests_per_integration_day": _per_day(metrics_calls),
        "metrics_requests": sum(metrics_calls.values()),
        "metrics_requests_issue_target": bound["issue_metrics_target"],
        "wall_s": round(pipe["wall_s"], 2),
        "run_creation_s": round(pipe["run_creation_s"], 2),
        "run_execution_s": round(pipe["run_execution_s"], 2),
        "api_bound_s": round(pipe_bound_s, 2),
        "api_bound_s_at_lower_bound": round(bound["total"] * latency_s / concurrency, 2),
        "wall_vs_api_bound": round(pipe["wall_s"] / pipe_bound_s, 3) if pipe_bound_s else None,
        "rows_written": pipe_rows,
        "rows_per_s": round(pipe_rps, 1),
        "peak_rss_mb": pipe["peak_rss_mb"],
        "dagster_runs": pipe["dagster_runs"],
        "dagster_processes": 0,
        "per_partition_overhead_ms": None
        if per_partition_ms is None
        else round(per_partition_ms, 2),
        "overhead_direct_s_latency0": None if direct_s is None else round(direct_s, 2),
        "overhead_dagster_s_latency0": None if dagster0_s is None else round(dagster0_s, 2),
        "baseline": {
            "integrations_run": sample,
            "scaled_by": round(scale, 3),
            "api_requests": base_requests,
            "metrics_requests": round(baseline.stats.metrics_requests * scale),
            "wall_s": round(base_wall, 2),
            "api_bound_s": round(base_requests * latency_s, 2),
            "rows_written": base_rows_scaled,
            "rows_per_s": round(base_rps, 1),
            "peak_rss_mb": base["peak_rss_mb"],
        },
        "ratios": {
            "wall_speedup": round(base_wall / pipe["wall_s"], 2),
            "api_requests_baseline_over_pipeline": round(base_requests / pipe["requests"], 2),
            "rows_per_s_pipeline_over_baseline": round(pipe_rps / base_rps, 2)
            if base_rps
            else None,
            "rows_written_pipeline_over_baseline": round(pipe_rows / base_rows_scaled, 3)
            if base_rows_scaled
            else None,
        },
    }


def warehouse_scenario(rows: int, per_call: int) -> dict[str, Any]:
    reset_peak_rss()
    started = time.perf_counter()
    result = warehouse_bulk.run(rows, per_call, log)
    return {
        "scenario": "warehouse",
        "scaled_down": rows < 1_000_000,
        **result,
        "wall_s": round(time.perf_counter() - started, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


# ------------------------------------------------------------------------------ CLI


def shapes(args: argparse.Namespace) -> list[Shape]:
    names = ["small", "daily", "backfill"] if args.scenario == "all" else [args.scenario]
    out = []
    for name in names:
        integrations, days = (QUICK if args.quick else FULL)[name]
        custom = args.scenario != "all" and (args.integrations or args.days)
        if args.scenario != "all":
            integrations = args.integrations or integrations
            days = args.days or days
        scaled = (integrations, days) != FULL[name] and not custom
        out.append(Shape(name, integrations, days, args.posts_per_day, args.latency_ms, scaled))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    choices = ["small", "daily", "backfill", "warehouse", "ranges", "all"]
    parser.add_argument("--scenario", choices=choices, default="small")
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--integrations", type=int, help="override the scenario's integrations")
    parser.add_argument("--days", type=int, help="override the scenario's days")
    parser.add_argument("--posts-per-day", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="daily 100 x 1, backfill 20 x 30")
    parser.add_argument(
        "--baseline-max-integrations",
        type=int,
        default=50,
        help="run the (sequential) baseline on at most this many integrations and scale",
    )
    parser.add_argument("--no-overhead", action="store_true", help="skip the latency-0 runs")
    parser.add_argument("--rows", type=int, default=1_000_000, help="warehouse scenario rows")
    parser.add_argument("--rows-per-call", type=int, default=1_000)
    args = parser.parse_args(argv)
    if min(args.latency_ms, args.posts_per_day) < 0:
        parser.error("--latency-ms and --posts-per-day must be >= 0")
    if args.baseline_max_integrations < 1:
        parser.error("--baseline-max-integrations must be >= 1")
    if args.rows < 1 or args.rows_per_call < 1:
        parser.error("--rows and --rows-per-call must be >= 1")

    runners: list[Callable[[], dict[str, Any]]] = []
    if args.scenario == "ranges":
        runners.append(partial(range_requests.run, args.days or 90, args.posts_per_day))
    elif args.scenario != "warehouse":
        for shape in shapes(args):
            if shape.start < shape.partitions_start:
                parser.error(f"{shape.name}: {shape.start} is before the first date partition")
            overhead = not args.no_overhead
            runners.append(partial(api_scenario, shape, args.baseline_max_integrations, overhead))
    if args.scenario in ("warehouse", "all"):
        runners.append(partial(warehouse_scenario, args.rows, args.rows_per_call))
    for runner in runners:
        print(json.dumps(runner()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
