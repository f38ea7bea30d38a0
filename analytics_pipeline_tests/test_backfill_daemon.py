"""Backfills launched the way the UI launches them, run by a real daemon: exactly the selection.

The production shape: the project's deploy/dagster.yaml (SQLite storage, queued runs, run
retries), a separate `dagster-daemon` and `dagster-webserver`, runs in their own processes, the
sandbox Graph API and a SQLite warehouse (`benchmarks/backfill_daemon.py` builds and tears down
that world). The one difference: the backfill daemon loops every 2 s instead of Dagster's fixed 30 s
(`benchmarks/fast_daemon.py`; nothing in dagster.yaml or the environment sets it).

One world serves every form (module-scoped). Each form backfills the last 3 complete days x the
first and last of 3 tracked integrations, so the middle one is NOT selected and a range spanning
first..last would show up as partitions outside the selection; `all` selects every partition
(the world's first date partition is the first of those days, which also keeps the runs short:
metadata windows do not reach before it). Partitions are attributed to a backfill through its
runs (`dagster/backfill` tag), so earlier forms' materializations of the same keys do not count
for later ones. Every selected partition must also be FRESH (not Unsynced); the last test shows
that check does see a stale partition.

Run with the pre-fix `step_partition_keys` (single-partition tags first), both job forms fail:
each of their range runs materializes the same one partition (1 of 6 distinct, 2 events) while
Dagster still reports the backfill COMPLETED_SUCCESS.
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Iterator

import pytest

from benchmarks import backfill_daemon as bd

DAYS = 3
INTEGRATIONS = 3
SELECTED = (0, 2)
TIMEOUT_S = 240
JOB_FORMS = ("job-assets", "job")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def world() -> Iterator[bd.World]:
    start, _ = bd.scenario_dates(DAYS, first_partition=dt.date.min)
    world = bd.World(INTEGRATIONS, partitions_start=start, daemon_interval_s=2)
    try:
        with world:
            yield world
    finally:
        # Whatever happened: nothing of the world is left running, listening or on disk.
        assert not world.leftovers, f"processes outlived their group: {world.leftovers}"
        assert not bd.leftover_pids(str(world.tmp))
        assert not [port for port in world.ports if _listening(port)]
        assert not world.tmp.exists()


@pytest.fixture(scope="module")
def selection(world: bd.World) -> bd.Selection:
    start, end = bd.scenario_dates(DAYS, first_partition=world.partitions_start)
    return bd.Selection.of(start, end, [world.integrations[i] for i in SELECTED])


def test_the_asset_graph_dialog_targets_the_hidden_asset_job(world: bd.World) -> None:
    """The Materialize dialog picks the first job all selected assets share, in the sorted
    `jobNames` (`__ASSET_JOB` < `ingestion_job`): from the asset graph it launches the `keys`
    form; only the job's page (preferred job) launches `job-assets`."""
    for asset, job_names in world.job_names.items():
        assert job_names[:2] == ["__ASSET_JOB", "ingestion_job"], asset


@pytest.mark.parametrize("form", list(bd.FORMS))
def test_backfill_materializes_exactly_the_selection(
    world: bd.World, selection: bd.Selection, form: str
) -> None:
    began = time.monotonic()
    result = bd.run_backfill(world, form, selection, TIMEOUT_S)
    assert result["backfill_status"] == "COMPLETED_SUCCESS", result
    assert result["runs_failed"] == 0 and result["runs_launched"] > 0, result

    expected = (DAYS + 1) * INTEGRATIONS if form == "all" else DAYS * len(SELECTED)
    assert result["expected_per_asset"] == expected
    assert result["dagster_num_partitions"] == expected, result
    assert sorted(result["assets"]) == sorted("/".join(key) for key in world.asset_keys)
    for asset, figures in result["assets"].items():
        # Every selected partition of every asset, nothing else, each once.
        assert figures["missing"] == 0, (asset, figures)
        assert figures["outside"] == 0, (asset, figures)
        assert figures["more_than_once"] == 0, (asset, figures)
        assert figures["materialized"] == figures["materializations"] == expected
        if figures["dagster_targeted"] is not None:  # asset backfills report their target
            assert figures["dagster_targeted"] == expected, (asset, figures)
        stale = result["stale"][asset]
        assert stale["partitions"] == {"FRESH": expected}, (asset, stale)
        assert stale["unsynced_badge"] == 0, (asset, stale)

    # One range run per selected integration (Dagster splits a single-run multi-partition
    # backfill by its smaller dimension), never one run per partition.
    integrations = INTEGRATIONS if form == "all" else len(SELECTED)
    assert result["runs_launched"] == integrations, result["run_targets"]
    if form in JOB_FORMS:
        # The job page's runs carry a range AND one partition's per-dimension tags: the case
        # `step_partition_keys` reads the range for (each run still did its whole range above).
        assert result["range_runs_with_dimension_tags"] == integrations, result
    print(f"{form}: {result['wall_s']} s to done, {time.monotonic() - began:.1f} s in the test")


def test_the_staleness_check_sees_a_stale_partition(
    world: bd.World, selection: bd.Selection
) -> None:
    """The FRESH assertions above can fail: after content_metadata alone is re-materialized for
    one partition, content_daily_metrics of that partition is STALE (and only that one)."""
    key = selection.keys()[0]
    params = {"assetSelection": [{"path": ["content_metadata"]}], "partitionNames": [key]}
    state = bd.wait_for_backfill(world, bd.launch(world, params), TIMEOUT_S)
    assert state["status"] == "COMPLETED_SUCCESS", state
    stale = bd.staleness(world, selection.keys())
    assert stale["content_daily_metrics"]["partitions"] == {
        "STALE": 1,
        "FRESH": DAYS * len(SELECTED) - 1,
    }
    assert stale["content_metadata"]["partitions"] == {"FRESH": DAYS * len(SELECTED)}
