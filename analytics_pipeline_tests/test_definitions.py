"""The Definitions load, validate with the Dagster CLI, and wire what the README promises."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from analytics_pipeline.definitions import defs as load_defs
from analytics_pipeline.defs.assets import (
    ACCOUNT_DAILY_METRICS,
    CONTENT_DAILY_METRICS,
    CONTENT_METADATA,
)
from analytics_pipeline.defs.partitions import INTEGRATIONS_PARTITIONS_NAME, content_partitions
from analytics_pipeline.records import ContentPartition
from analytics_pipeline.settings import SettingsError
from analytics_pipeline.warehouse import tables

ROOT = Path(__file__).resolve().parents[1]


def _validate(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """`dg check defs` in the project, as scripts/test runs it."""
    dg_cli = Path(sys.executable).with_name("dg")
    return subprocess.run(
        [str(dg_cli), "check", "defs"],
        cwd=ROOT,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path), **variables},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_assets_are_partitioned_by_date_and_integration_with_lookback_dependency():
    graph = load_defs().resolve_asset_graph()
    metadata, metrics = graph.get(CONTENT_METADATA), graph.get(CONTENT_DAILY_METRICS)
    assert metadata.partitions_def == content_partitions == metrics.partitions_def
    assert set(content_partitions.partition_dimension_names) == {"date", "integration"}
    assert metrics.parent_keys == {CONTENT_METADATA}
    assert metadata.group_name == metrics.group_name == "social_content"
    assert metadata.kinds and metrics.kinds
    ingestion = {CONTENT_METADATA, CONTENT_DAILY_METRICS, ACCOUNT_DAILY_METRICS}
    checks = {
        (key.asset_key, key.name) for key in graph.asset_check_keys if key.asset_key in ingestion
    }
    assert {
        (CONTENT_METADATA, "content_matches_integration"),
        (CONTENT_DAILY_METRICS, "metrics_have_content_item"),
        (CONTENT_DAILY_METRICS, "no_negative_counts"),
        (CONTENT_DAILY_METRICS, "one_value_kind_per_integration_day"),
        (CONTENT_DAILY_METRICS, "no_decreased_lifetime_counters"),
        (ACCOUNT_DAILY_METRICS, "no_negative_account_values"),
        (ACCOUNT_DAILY_METRICS, "followers_total_has_observed_at"),
    } == checks


def test_a_selected_metadata_range_reaches_exactly_the_same_metrics_partitions():
    """A UI backfill of D1..D2 x integrations also targets the downstream partitions the
    mapping names: metrics D depends on metadata D only, so none beyond the selection."""
    graph = load_defs().resolve_asset_graph()
    mapping = graph.get_partition_mapping(CONTENT_DAILY_METRICS, CONTENT_METADATA)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(INTEGRATIONS_PARTITIONS_NAME, ["a", "b", "c"])
        selected = {
            ContentPartition(dt.date(2026, 11, 19) + dt.timedelta(days=n), i).key
            for n in range(5)
            for i in ("a", "b")
        }
        subset = content_partitions.subset_with_partition_keys(selected)
        downstream = mapping.get_downstream_partitions_for_partitions(
            subset, content_partitions, content_partitions, dynamic_partitions_store=instance
        )
    assert set(downstream.get_partition_keys()) == selected


def test_assets_show_their_table_columns_and_owners():
    graph = load_defs().resolve_asset_graph()
    for key, table in (
        (CONTENT_METADATA, tables.content_items),
        (CONTENT_DAILY_METRICS, tables.content_metrics_daily),
        (ACCOUNT_DAILY_METRICS, tables.account_metrics_daily),
    ):
        node = graph.get(key)
        schema = node.metadata["dagster/column_schema"]
        assert [column.name for column in schema.columns] == list(table.c.keys())
        assert node.metadata["table"] == table.name
        assert node.owners


def test_schedule_and_sensor_are_running_by_default():
    defs = load_defs()
    schedule = defs.resolve_schedule_def("daily_ingestion_schedule")
    sensor = defs.resolve_sensor_def("tracked_integrations_sensor")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_dg_check_defs_passes(tmp_path):
    proc = _validate(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_bad_setting_fails_loading_with_the_variable_named(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "ANALYTICS_LOOKBACK_DAYS": "many"}
    proc = subprocess.run(
        [sys.executable, "-c", "import analytics_pipeline.definitions"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "ANALYTICS_LOOKBACK_DAYS='many': Input should be a valid integer" in proc.stderr


def test_a_bad_resource_setting_fails_validation_with_the_variable_named(tmp_path):
    proc = _validate(tmp_path, ANALYTICS_FACEBOOK_API_VERSION="v25")
    assert proc.returncode != 0
    assert "ANALYTICS_FACEBOOK_API_VERSION='v25': api_version must look like v25.0" in (
        proc.stdout + proc.stderr
    )


def test_resource_settings_are_read_when_the_definitions_load_not_at_import(monkeypatch):
    import analytics_pipeline.definitions  # already imported: importing read nothing more

    monkeypatch.setenv("ANALYTICS_LINKEDIN_PAGE_SIZE", "7")
    monkeypatch.setenv("ANALYTICS_MAX_CONCURRENCY", "3")
    resources = analytics_pipeline.definitions.defs().resources
    assert resources["platforms"].linkedin.page_size == 7
    assert resources["platforms"].max_concurrency == 3
    monkeypatch.setenv("ANALYTICS_MAX_CONCURRENCY", "0")
    with pytest.raises(SettingsError, match="ANALYTICS_MAX_CONCURRENCY='0'"):
        analytics_pipeline.definitions.defs()


def test_loading_the_definitions_prints_no_warning(tmp_path: Path) -> None:
    """The demo and the CLI load the definitions; Dagster's beta APIs they use must not print a
    BetaWarning there (pytest's own filter hides it, hence a fresh interpreter with every
    warning shown)."""
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-W",
            "default",
            "-c",
            "from analytics_pipeline.definitions import defs; defs()",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stderr
