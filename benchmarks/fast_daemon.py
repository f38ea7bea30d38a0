"""`dagster-daemon` with a shorter backfill daemon loop: for tests, never for figures.

    python -m benchmarks.fast_daemon SECONDS run -m analytics_pipeline.definitions

Dagster 1.13 sleeps a fixed 30 s between backfill daemon iterations
(`dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS`, read by the loop each time; no
dagster.yaml key or environment variable sets it). This sets it, then runs the ordinary
`dagster-daemon` command line with the remaining arguments. The asset (automation) daemon's
default interval is the same constant; the run queue (5 s), sensors and schedules keep theirs.
"""

import sys

import dagster._daemon.controller as controller
from dagster._daemon.cli import main

if __name__ == "__main__":
    controller.DEFAULT_DAEMON_INTERVAL_SECONDS = int(sys.argv.pop(1))
    main()
