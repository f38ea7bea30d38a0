"""KPIs of one day for many integrations: compute time against the time to read the inputs.

Builds a synthetic warehouse (SQLite temp file by default, or `--url`): `--integrations` (1,000)
integrations over the four platforms, `--items` (100) content items each with lifetime snapshots
on the day and the day before (LinkedIn: daily values), and account metrics on both days. Then,
for the day, measures separately (best of `--repeat`):
- read: `read_content_day` + `read_account_day` (the SQL and the DataFrames);
- compute: `content_performance` + `account_kpis` (pandas only);
- write: `refresh_day` in one transaction (read + compute + upsert) on an empty KPI table,
  then again (every row unchanged);
- report: `refresh_report_day` (social_media_report: read + compute + upsert), likewise.
Prints one JSON object; `compute_to_read_ratio` is compute time / read time.

    python -m benchmarks.kpis [--integrations 1000] [--items 100] [--url URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from analytics_pipeline.kpis.account import account_kpis
from analytics_pipeline.kpis.content import content_performance
from analytics_pipeline.records import (
    PLATFORMS,
    AccountMetrics,
    ContentFormat,
    ContentItem,
    ContentMetrics,
    ValueKind,
)
from analytics_pipeline.warehouse import (
    add_integration,
    make_engine,
    migrate,
    upsert_account_metrics,
    upsert_content_items,
    upsert_content_metrics,
)
from analytics_pipeline.warehouse.kpis import read_account_day, read_content_day, refresh_day
from analytics_pipeline.warehouse.social_report import refresh_report_day

DAY = dt.date(2026, 3, 2)
NOW = dt.datetime(2026, 3, 3, 1, 30, tzinfo=dt.UTC)


def _metrics(item: str, kind: ValueKind, scale: int) -> ContentMetrics:
    return ContentMetrics(
        item,
        kind,
        impressions=100 * scale,
        reach=80 * scale,
        views=120 * scale,
        reactions=5 * scale,
        likes=4 * scale,
        comments=scale,
        shares=scale,
        clicks=2 * scale,
        saves=scale,
    )


def seed(engine: sa.Engine, integrations: int, items: int) -> None:
    published = dt.datetime.combine(DAY - dt.timedelta(days=3), dt.time(9), tzinfo=dt.UTC)
    for n in range(integrations):
        integration_id, platform = f"i{n:05d}", PLATFORMS[n % len(PLATFORMS)]
        ids = {"organization_id": f"org-{n % 50}", "integration_id": integration_id}
        kind = ValueKind.DAILY if platform == "linkedin" else ValueKind.LIFETIME_SNAPSHOT
        names = [f"{integration_id}-{k}" for k in range(items)]
        with engine.begin() as conn:
            add_integration(
                conn,
                **ids,
                platform=platform,
                external_account_id=_account_id(platform, n),
                display_name=integration_id,
                credential_env="BENCH_TOKEN",
                now=NOW,
            )
            upsert_content_items(
                conn,
                **ids,
                platform=platform,
                now=NOW,
                items=[ContentItem(name, ContentFormat.POST, published) for name in names],
            )
            for offset, scale in ((1, 1), (0, 2)):
                day = DAY - dt.timedelta(days=offset)
                upsert_content_metrics(
                    conn,
                    **ids,
                    metric_date=day,
                    observed_at=NOW,
                    metrics=[_metrics(name, kind, scale + k % 7) for k, name in enumerate(names)],
                )
                upsert_account_metrics(
                    conn,
                    **ids,
                    metric_date=day,
                    observed_at=NOW,
                    metrics=AccountMetrics(followers_total=1000 + n + offset, reach=5000),
                )


def _account_id(platform: str, n: int) -> str:
    """A valid account id of the platform (onboarding checks them), unique per integration."""
    return f"urn:li:organization:{n + 1}" if platform == "linkedin" else str(1_000_000 + n)


def best_of(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(engine: sa.Engine, repeat: int) -> dict[str, Any]:
    def read() -> tuple[Any, Any]:
        with engine.connect() as conn:
            return read_content_day(conn, DAY), read_account_day(conn, DAY)

    read_s, (content_inputs, account_inputs) = best_of(repeat, read)

    def compute() -> tuple[Any, Any]:
        rows = content_performance(content_inputs, DAY)
        return rows, account_kpis(account_inputs, rows, DAY)

    compute_s, (content_rows, account_rows) = best_of(repeat, compute)

    def refresh() -> Any:
        with engine.begin() as conn:
            return refresh_day(conn, DAY, NOW)

    first_s, first = best_of(1, refresh)
    rerun_s, rerun = best_of(1, refresh)

    def report() -> Any:
        with engine.begin() as conn:
            return refresh_report_day(conn, DAY, NOW)

    report_s, report_first = best_of(1, report)
    report_rerun_s, report_rerun = best_of(1, report)
    return {
        "content_rows": len(content_rows),
        "account_rows": len(account_rows),
        "read_s": round(read_s, 3),
        "compute_s": round(compute_s, 3),
        "compute_to_read_ratio": round(compute_s / read_s, 3),
        "refresh_day_insert_s": round(first_s, 3),
        "refresh_day_insert_rows": first.content_counts.inserted + first.account_counts.inserted,
        "refresh_day_rerun_s": round(rerun_s, 3),
        "refresh_day_rerun_unchanged": rerun.content_counts.unchanged
        + rerun.account_counts.unchanged,
        "report_insert_s": round(report_s, 3),
        "report_insert_rows": report_first.counts.inserted,
        "report_rerun_s": round(report_rerun_s, 3),
        "report_rerun_unchanged": report_rerun.counts.unchanged,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--integrations", type=int, default=1000)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", help="A warehouse URL (default: a SQLite temp file).")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        url = args.url or f"sqlite:///{Path(scratch) / 'kpis.sqlite'}"
        engine = make_engine(url)
        migrate(engine)
        start = time.perf_counter()
        seed(engine, args.integrations, args.items)
        seed_s = time.perf_counter() - start
        result = measure(engine, args.repeat)
        engine.dispose()
    dialect = sa.make_url(url).get_backend_name()
    print(
        json.dumps(
            {
                "dialect": dialect,
                "integrations": args.integrations,
                "items": args.items,
                "seed_s": round(seed_s, 1),
                **result,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
