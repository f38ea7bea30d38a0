"""Peak memory against backfill size, each measurement in a fresh process.

    .venv/bin/python -m benchmarks.memory_probe [--integrations 10] [--days 7 30 90]

For each number of days it starts one child process per mode, on the same shape (N Facebook
sandbox pages, D days, latency 0, a seeded SQLite warehouse, all in a temp directory):
- `direct`: the pipeline's own work, `ingest_integration` on its thread pool, no Dagster;
- `dagster`: the same through `dg.materialize` (one single-run backfill run, in process).
A child reports its VmHWM (peak resident set) and its VmRSS right after imports, so the growth
of each is what the run itself held. One JSON line per (mode, days) on stdout. Our code streams
every page to the warehouse, so `direct` should stay flat as days grow; what Dagster keeps per
partition (the run's planned events, the step's partition keys) shows up in `dagster`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MODES = ("direct", "dagster")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(mode: str, integrations: int, days: int) -> dict[str, Any]:
    """Runs in the child process: imports, then one run; returns the memory figures."""
    from analytics_sandbox.data import SandboxConfig
    from benchmarks import harness
    from benchmarks.remote_sandbox import RemoteSandbox

    after_imports = _status_mb("VmRSS")
    shape = harness.Shape("memory", integrations, days, 3, 0, scaled=False)
    config = SandboxConfig(posts_per_day=(3, 3))
    os.environ[harness.TOKEN_ENV] = harness.TOKEN
    with tempfile.TemporaryDirectory(prefix="memory-") as tmp, RemoteSandbox(3) as sb:
        url = harness.new_warehouse(Path(tmp), mode, shape, config)
        harness.reset_peak_rss()
        if mode == "direct":
            harness.run_direct(shape, sb, url)
        else:
            result = harness.run_dagster(shape, sb, url)
            if not result["success"]:
                raise RuntimeError("the Dagster run failed")
        rows = harness.data_rows(url)
    peak = _status_mb("VmHWM")
    return {
        "mode": mode,
        "integrations": integrations,
        "days": days,
        "partitions": integrations * days,
        "rows_in_warehouse": rows,
        "rss_after_imports_mb": after_imports,
        "peak_rss_mb": peak,
        "growth_mb": round(peak - after_imports, 1),
    }


def measure(integrations: int, day_counts: Sequence[int]) -> list[dict[str, Any]]:
    lines = []
    for days in day_counts:
        for mode in MODES:
            command = [sys.executable, "-m", "benchmarks.memory_probe", "--child", mode]
            command += ["--integrations", str(integrations), "--days", str(days)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{mode} x {days} days failed:\n{done.stderr[-2000:]}")
            lines.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--integrations", type=int, default=10)
    parser.add_argument("--days", type=int, nargs="+", default=[7, 30, 90])
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.integrations < 1 or min(args.days) < 1:
        parser.error("--integrations and --days must be >= 1")
    if args.child:
        print(json.dumps(child(args.child, args.integrations, args.days[0])), flush=True)
        return 0
    for line in measure(args.integrations, args.days):
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
