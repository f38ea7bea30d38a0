"""$DAGSTER_HOME for the CLI, the demo and the scripts: seeded once, initialized once.

A first concurrent use of a fresh home (say a webserver, a daemon and a CLI starting together)
once left the SQLite schedule storage with "more than one head": each process created the
tables and stamped the Alembic revision itself. `ensure_dagster_home` creates every storage of
the instance in ONE process, under an exclusive file lock, before anything else opens it;
later calls see the marker and return at once. Run `analytics-pipeline init-dagster-home`
before starting `dagster-webserver` and `dagster-daemon` on a fresh home.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = ".analytics-init.lock"
READY_MARKER = ".analytics-initialized"


def ensure_dagster_home() -> Path:
    """$DAGSTER_HOME (or ./.dagster_home seeded with deploy/dagster.yaml), with its
    storages created and migrated; sets DAGSTER_HOME for this process and its children."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path.cwd() / ".dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    if (home / READY_MARKER).exists():
        return home
    with _exclusive(home / LOCK_FILE):
        if not (home / READY_MARKER).exists():
            _seed_config(home)
            _initialize_storage()
            (home / READY_MARKER).write_text("storage initialized by analytics-pipeline\n")
    return home


def _seed_config(home: Path) -> None:
    # Kept out of the project root: `dg dev` warns about a dagster.yaml in the current folder
    # that is not $DAGSTER_HOME.
    template = PROJECT_ROOT / "deploy" / "dagster.yaml"
    if not (home / "dagster.yaml").exists() and template.exists():
        shutil.copyfile(template, home / "dagster.yaml")


def _initialize_storage() -> None:
    """Open every storage once (creating tables and stamping their revision), then bring them
    to the installed Dagster's schema."""
    # Dagster's SQLite storages print their upgrade steps; keep the CLI's output to the point.
    with contextlib.redirect_stdout(io.StringIO()), dg.DagsterInstance.get() as instance:
        instance.upgrade(print_fn=lambda _message: None)
        # Touch each storage so lazily created ones exist before anyone else opens them.
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        instance.get_dynamic_partitions("__analytics_init__")


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
