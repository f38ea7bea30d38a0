"""A stop asked for by the process that runs the pipeline in process (the CLI's `backfill`).

The CLI executes its Dagster runs on a worker thread, so Dagster installs no signal handler of
its own there and cannot turn SIGTERM / Ctrl-C into a step retry; the CLI's main thread turns
them into `request_stop()` instead, and the ingestion step (defs/assets.py) polls
`stop_requested()`: it stops its workers, waits for the partitions being written, fails the
rest as `stopped` and ends without a retry. Runs launched by Dagster itself (UI, daemon) are
stopped through Dagster's interrupt, which the step handles the same way.
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
