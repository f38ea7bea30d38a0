"""The README's first command (`analytics-sandbox demo`): the whole pipeline on this machine.

Starts the sandbox (all four platform APIs) on a free local port, tracks N Facebook pages and one
Instagram, LinkedIn and X account (idempotently), runs a single-run backfill of the last D
complete days through Dagster on $DAGSTER_HOME, prints what landed, then runs the KPI job over
those days (as the KPI sensor would) and prints a KPI summary per account (demo_kpis.py).
Running it twice leaves the same rows.
"""

from __future__ import annotations

import datetime as dt
import os
import time

import sqlalchemy as sa

from analytics_pipeline import warehouse as wh
from analytics_pipeline.defs import runs
from analytics_pipeline.defs.partitions import SETTINGS
from analytics_pipeline.ingest import snapshot_day
from analytics_pipeline.records import PLATFORMS
from analytics_pipeline.warehouse import tables
from analytics_pipeline.warehouse.migrations import migrate
from analytics_sandbox.demo_kpis import print_kpis
from analytics_sandbox.server import SandboxServer

DEMO_ORG = "demo-org"
DEMO_TOKEN_ENV = "ANALYTICS_DEMO_TOKEN"  # noqa: S105 (a variable name, not a token)
FIRST_DEMO_PAGE = 1000001
# One account of every other platform, with ids the sandbox knows.
OTHER_DEMO_ACCOUNTS = (
    ("demo-ig-1", "instagram", "17841400000000001", "Demo Instagram account"),
    ("demo-li-1", "linkedin", "urn:li:organization:2000001", "Demo LinkedIn page"),
    ("demo-x-1", "x", "3000001", "Demo X account"),
)


def demo_accounts(pages: int) -> list[tuple[str, str, str, str]]:
    """(integration_id, platform, external account id, display name) of the demo."""
    facebook = [
        (f"demo-fb-{n + 1}", "facebook", str(FIRST_DEMO_PAGE + n), f"Demo Facebook page {n + 1}")
        for n in range(pages)
    ]
    return facebook + list(OTHER_DEMO_ACCOUNTS)


def _track_demo_accounts(engine: sa.Engine, pages: int) -> list[str]:
    now = dt.datetime.now(dt.UTC)
    accounts = demo_accounts(pages)
    with engine.begin() as conn:
        for integration_id, platform, account_id, name in accounts:
            wh.upsert_integration(
                conn,
                organization_id=DEMO_ORG,
                integration_id=integration_id,
                platform=platform,
                external_account_id=account_id,
                display_name=name,
                credential_env=DEMO_TOKEN_ENV,
                now=now,
            )
    return [integration_id for integration_id, *_ in accounts]


def run_demo(days: int, pages: int) -> int:
    started = time.perf_counter()
    home = runs.ensure_dagster_home()
    engine = wh.make_engine(wh.default_warehouse_url())
    migrate(engine)
    # Ending on the current snapshot day: its lifetime totals are recorded (older days' are not).
    end = snapshot_day(dt.datetime.now(dt.UTC), dt.timedelta(hours=SETTINGS.snapshot_cutoff_hours))
    start = end - dt.timedelta(days=days - 1)
    with SandboxServer() as sandbox:
        # Only this process sees these: the demo never changes the caller's environment.
        for platform in PLATFORMS:
            os.environ[f"ANALYTICS_{platform.upper()}_BASE_URL"] = sandbox.base_url
        os.environ.setdefault(DEMO_TOKEN_ENV, "demo-sandbox-token")
        ids = _track_demo_accounts(engine, pages)
        platform_of = {account[0]: account[1] for account in demo_accounts(pages)}
        # Launched at once (never queued): the sandbox settings above live in this process's
        # environment, which reaches the run worker only through the launcher started here.
        summaries = runs.run_backfill(
            start, end, ids, ids, platform_of=platform_of, via_queue=False
        ).runs
        sandbox_requests = sandbox.request_count()
    print_summary(engine, ids, start, end, summaries, sandbox_requests)
    kpi_runs = runs.run_kpis(start, end)  # what the KPI sensors request once ingestion lands
    print_kpis(engine, DEMO_ORG, start, end, kpi_runs)
    print(
        f"\nDone in {time.perf_counter() - started:.1f}s. Warehouse: "
        f"{engine.url.render_as_string(hide_password=True)}; Dagster home: {home}.\n"
        "Open the UI with `dg dev` (see README) to browse the runs and partitions."
    )
    return 0 if all(summary.success for summary in [*summaries, *kpi_runs]) else 1


def _counts(engine: sa.Engine, ids: list[str], start: dt.date, end: dt.date) -> dict[str, tuple]:
    items, metrics = tables.content_items, tables.content_metrics_daily
    account = tables.account_metrics_daily
    lo = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    out: dict[str, tuple] = {}
    with engine.connect() as conn:
        for integration_id in ids:
            n_items = conn.scalar(
                sa.select(sa.func.count())
                .select_from(items)
                .where(items.c.integration_id == integration_id)
                .where(items.c.published_at >= lo, items.c.published_at < hi)
            )
            n_metrics = conn.scalar(
                sa.select(sa.func.count())
                .select_from(metrics)
                .where(metrics.c.integration_id == integration_id)
                .where(metrics.c.metric_date.between(start, end))
            )
            n_account = conn.scalar(
                sa.select(sa.func.count())
                .select_from(account)
                .where(account.c.integration_id == integration_id)
                .where(account.c.metric_date.between(start, end))
            )
            kinds = sorted(
                conn.scalars(
                    sa.select(metrics.c.value_kind)
                    .where(metrics.c.integration_id == integration_id)
                    .distinct()
                )
            )
            row = wh.get_integration(conn, integration_id)
            out[integration_id] = (
                row.platform if row else "?",
                n_items,
                n_metrics,
                ",".join(kinds) or "-",
                n_account,
                row.status if row else "?",
            )
    return out


def print_summary(
    engine: sa.Engine,
    ids: list[str],
    start: dt.date,
    end: dt.date,
    summaries: list[runs.RunSummary],
    sandbox_requests: int,
) -> None:
    print(f"\nanalytics_pipeline demo: {len(ids)} tracked account(s) x {start} .. {end}")
    header = (
        "integration",
        "platform",
        "content",
        "metric rows",
        "value kind",
        "account",
        "status",
    )
    print("{:<12} {:<10} {:>7} {:>11}  {:<18} {:>7}  {}".format(*header))
    for integration_id, row in _counts(engine, ids, start, end).items():
        print("{:<12} {:<10} {:>7} {:>11}  {:<18} {:>7}  {}".format(integration_id, *row))
    print(
        "Lifetime totals (Facebook, Instagram, X) are stamped on the day they were observed, so "
        f"only {end} has them; LinkedIn reports true daily values, so every day has rows."
    )
    api_calls = sum(summary.api_calls for summary in summaries)
    failed = [p for summary in summaries for p in summary.partitions_failed]
    print(
        f"Dagster runs: {len(summaries)}; partitions materialized: "
        f"{sum(s.partitions_materialized for s in summaries)}; failed: {len(failed)}; "
        f"API calls: {api_calls} (sandbox saw {sandbox_requests}); "
        f"run time: {sum(s.seconds for s in summaries):.1f}s"
    )
    for partition in failed:
        print(f"  failed: {partition}")
