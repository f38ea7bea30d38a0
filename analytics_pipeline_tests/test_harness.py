"""The issue-4 benchmark harness on a tiny scenario: its figures must be measured, consistent
with each other and with the lower bound it computes (no timings are asserted)."""

from __future__ import annotations

import json

import pytest

from benchmarks import harness, range_requests


@pytest.fixture(scope="module")
def tiny() -> dict:
    """2 integrations x 3 days at latency 0; the baseline on both (no scaling, so that the rows
    both designs write can be compared one to one)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(harness.TOKEN_ENV, harness.TOKEN)
        shape = harness.Shape("small", 2, 3, 3, 0, scaled=False)
        return harness.api_scenario(shape, baseline_max=2, overhead=True)


def test_the_line_is_json_with_every_reported_figure(tiny: dict) -> None:
    line = json.loads(json.dumps(tiny))
    for field in (
        "api_requests",
        "api_requests_lower_bound",
        "wall_s",
        "api_bound_s",
        "rows_per_s",
        "peak_rss_mb",
        "dagster_runs",
        "per_partition_overhead_ms",
    ):
        assert field in line, field
    assert line["success"] is True
    assert line["partitions"] == 6 and line["dagster_runs"] == 1
    assert line["peak_rss_mb"] > 0 and line["wall_s"] > 0
    # Run creation (planned events) + execution (from the run's own stats) fit in the wall.
    parts = line["run_creation_s"] + line["run_execution_s"]
    assert line["run_execution_s"] > 0 and parts == pytest.approx(line["wall_s"], abs=0.02)


def test_the_pipeline_makes_exactly_the_lower_bound_of_requests(tiny: dict) -> None:
    bound = tiny["api_requests_lower_bound_parts"]
    # One range listing and one account batch per integration, whatever the number of days.
    assert bound["listing"] == 2 and bound["account"] == 2
    assert tiny["listing_and_account_requests_per_integration_day"] == round(4 / 6, 3)
    assert tiny["api_requests"] == tiny["api_requests_lower_bound"] == bound["total"]
    assert tiny["metrics_requests"] == bound["metrics"]
    assert tiny["metrics_requests"] <= tiny["metrics_requests_issue_target"]
    per_day = tiny["metrics_requests_per_integration_day"]
    assert per_day["partitions"] == 2 * len(tiny["recordable_metrics_days"])


def test_the_baseline_writes_the_same_rows_with_one_request_per_post(tiny: dict) -> None:
    baseline = tiny["baseline"]
    assert baseline["integrations_run"] == 2 and baseline["scaled_by"] == 1
    assert tiny["rows_written"] > 0
    assert tiny["ratios"]["rows_written_pipeline_over_baseline"] == 1.0
    # Per recordable integration-day: the listing of the window is already stored, so the
    # baseline asks once per item in the lookback window; the pipeline batches 50 at a time.
    assert baseline["metrics_requests"] > 10 * tiny["metrics_requests"]
    assert baseline["api_requests"] > tiny["api_requests"]


def test_the_overhead_figure_comes_from_both_latency_zero_runs(tiny: dict) -> None:
    direct, dagster = tiny["overhead_direct_s_latency0"], tiny["overhead_dagster_s_latency0"]
    assert direct > 0 and dagster > 0
    expected = (dagster - direct) * 1000 / tiny["partitions"]
    assert tiny["per_partition_overhead_ms"] == pytest.approx(expected, abs=2)


@pytest.mark.parametrize(
    "argv",
    [["--latency-ms", "-1"], ["--rows", "0"], ["--baseline-max-integrations", "0"]],
)
def test_bad_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        harness.main(argv)
    assert exit_info.value.code == 2
    assert f"{argv[0]} " in capsys.readouterr().err  # the message names the option


def test_the_ranges_scenario_counts_what_the_sandbox_saw_per_platform() -> None:
    """30 old days of one account per platform: every request the clients counted reached the
    sandbox, the listings found content, and each platform is far below the per-day design."""
    line = json.loads(json.dumps(range_requests.run(days=30, posts_per_day=2)))
    assert set(line["platforms"]) == {"facebook", "instagram", "linkedin", "x"}
    for platform, figures in line["platforms"].items():
        assert figures["requests"] == figures["requests_seen_by_sandbox"] > 0, platform
        assert figures["items_listed"] > 0, platform
        assert figures["requests_per_integration_day"] == round(figures["requests"] / 30, 3)
        assert figures["requests"] < figures["per_day_design_requests"], platform
