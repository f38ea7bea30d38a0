"""How backfills and schedules split work into runs, and how the CLI applies the run queue's
limits when it launches runs itself (no daemon)."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import dagster as dg
import pytest
import yaml

from analytics_pipeline.defs.launch import QueueLimits, daemon_is_running, direct_launch_home
from analytics_pipeline.defs.partitions import (
    PLATFORM_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    RunBatch,
    batch_run_tags,
    plan_run_batches,
)

ROOT = Path(__file__).resolve().parents[1]
PLATFORM_LIMIT = {"key": PLATFORM_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 2}


def _platforms(n: int) -> dict[str, str]:
    cycle = itertools.cycle(["facebook", "facebook", "instagram", "linkedin", "x"])
    return {f"i{k:03d}": next(cycle) for k in range(n)}


@pytest.mark.parametrize("max_per_run", [1, 2, 3, 50])
def test_every_chosen_integration_runs_exactly_once_in_single_platform_blocks(max_per_run):
    platform_of = _platforms(23)
    ordered = list(platform_of)
    chosen = [key for n, key in enumerate(ordered) if n % 7 != 3]  # holes in the order
    batches = plan_run_batches(ordered, chosen, platform_of, max_per_run)
    covered = [key for batch in batches for key in batch.integration_ids]
    assert sorted(covered) == sorted(chosen)  # each once, nothing else
    for batch in batches:
        assert 1 <= len(batch.integration_ids) <= max_per_run
        assert {platform_of[key] for key in batch.integration_ids} == {batch.platform}
        # A range run spans everything between its ends: only chosen keys may lie there.
        first, last = (
            ordered.index(key) for key in (batch.integration_ids[0], batch.integration_ids[-1])
        )
        assert ordered[first : last + 1] == list(batch.integration_ids)


def test_a_large_single_platform_set_is_split_by_size():
    platform_of = {f"fb{n:04d}": "facebook" for n in range(120)}
    batches = plan_run_batches(list(platform_of), platform_of, platform_of, 50)
    assert [len(batch.integration_ids) for batch in batches] == [50, 50, 20]


def test_a_batch_run_carries_its_range_and_platform():
    day = dt.date(2026, 11, 3)
    tags = batch_run_tags(day, day + dt.timedelta(days=2), RunBatch("linkedin", ("a", "b")))
    assert tags == {
        RANGE_START_TAG: "2026-11-03|a",
        RANGE_END_TAG: "2026-11-05|b",
        PLATFORM_TAG: "linkedin",
    }


def test_the_cli_applies_the_queue_limits_when_it_launches_runs_itself():
    limits = QueueLimits(max_concurrent=4, tag_limits=[PLATFORM_LIMIT])
    fb, ig = {PLATFORM_TAG: "facebook"}, {PLATFORM_TAG: "instagram"}
    assert limits.allows(fb, [fb])
    assert not limits.allows(fb, [fb, fb])  # at most 2 per platform
    assert limits.allows(ig, [fb, fb])
    assert not limits.allows(ig, [fb, fb, ig, {PLATFORM_TAG: "x"}])  # at most 4 in all
    assert limits.allows({}, [fb, fb])  # untagged runs count only against the total


def test_the_project_queue_limits_are_read_from_dagster_yaml(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        limits = QueueLimits.of(instance)
        assert not daemon_is_running(instance)
    assert limits.max_concurrent == 4
    assert [(lim["key"], lim["limit"]) for lim in limits.tag_limits] == [(PLATFORM_TAG, 2)]


def test_the_direct_launch_home_shares_storage_and_launches_at_once(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions("tracked_integrations", ["a"])
    direct = direct_launch_home(home)
    config = yaml.safe_load((direct / "dagster.yaml").read_text())
    assert "run_queue" not in config
    assert config["run_monitoring"]["enabled"] is True  # everything else kept
    monkeypatch.setenv("DAGSTER_HOME", str(direct))
    with dg.DagsterInstance.get() as instance:
        # Dagster 1.13's DefaultRunCoordinator is SyncInMemoryRunCoordinator: submit = launch.
        assert not isinstance(instance.run_coordinator, dg.QueuedRunCoordinator)
        assert type(instance.run_coordinator).__name__ == "SyncInMemoryRunCoordinator"
        assert instance.get_dynamic_partitions("tracked_integrations") == ["a"]


def test_a_postgres_home_keeps_its_storage_section(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.postgres.yaml").read_text())
    config = yaml.safe_load((direct_launch_home(home) / "dagster.yaml").read_text())
    assert config["storage"]["postgres"]["postgres_db"]["scheme"] == "postgresql+psycopg2"
    assert config["run_coordinator"]["class"] == "DefaultRunCoordinator"
