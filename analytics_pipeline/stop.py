"""A stop asked for by a process that runs the pipeline in process (`dg.materialize`,
`execute_in_process`: the benchmarks, tests, an embedding host).

Such a host calls `request_stop()` (e.g. from its SIGTERM handler); the ingestion step
(defs/integration_run.py) polls `stop_requested()`: it stops its workers, waits for the
partitions being written, fails the rest as `stopped` and ends without a retry. Runs launched
through the instance (the UI, the daemon, `analytics-pipeline backfill`) are stopped through
Dagster's own interrupt (Terminate), which the step handles the same way.
"""

from __future__ import annotations

import threading

_STOP = threading.Event()


def request_stop() -> None:
    """Ask every ingestion step of this process to stop now."""
    _STOP.set()


def clear_stop() -> None:
    """Forget an earlier stop (before a new command runs in this process)."""
    _STOP.clear()


def stop_requested() -> bool:
    return _STOP.is_set()
