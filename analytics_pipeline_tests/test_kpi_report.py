"""`analytics-pipeline report`: per-integration rollups over a range, as a table, CSV or JSON,
and one-line errors for bad input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from analytics_pipeline.cli import main
from analytics_pipeline.warehouse import make_engine, migrate
from analytics_pipeline.warehouse.kpis import refresh_day
from analytics_pipeline_tests.kpi_data import BEFORE, DAY, seed

NOW = dt.datetime(2026, 3, 3, 2, 0, tzinfo=dt.UTC)


@pytest.fixture
def report_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    monkeypatch.setenv("ANALYTICS_WAREHOUSE_URL", url)
    engine = make_engine(url)
    migrate(engine)
    seed(engine)
    for day in (BEFORE, DAY):
        with engine.begin() as conn:
            refresh_day(conn, day, NOW)
    return engine


def _json_report(capsys: pytest.CaptureFixture[str], org: str) -> dict[str, dict]:
    code = main(
        ["report", "--org", org, "--from", str(BEFORE), "--to", str(DAY), "--format", "json"]
    )
    assert code == 0
    return {row["integration_id"]: row for row in json.loads(capsys.readouterr().out)}


def test_rollups_over_two_days(report_env: sa.Engine, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _json_report(capsys, "org-a")
    assert set(rows) == {"fb-1", "ig-1"}
    fb = rows["fb-1"]
    # BEFORE: p1 published that day: 10 + 2 + 5 = 17 (first snapshot); DAY: 10 + 7 = 17
    assert (fb["days"], fb["engagements_total"], fb["engagements_min"]) == (2, 34, 17)
    assert (fb["engagements_avg"], fb["engagements_max"], fb["days_with_engagements"]) == (
        17.0,
        17,
        2,
    )
    assert (fb["items_published"], fb["reach_total"]) == (2, 5000)
    assert fb["engagement_rate"] == pytest.approx(17 / 5000)  # only DAY has both
    # followers: the day before BEFORE has no snapshot -> growth unknown
    assert (fb["followers_end"], fb["followers_start"], fb["follower_growth"]) == (1010, None, None)
    assert (fb["top_content"], fb["top_content_engagements"]) == ("p1", 27)
    ig = rows["ig-1"]
    assert ig["new_followers_total"] == 12 and ig["reach_total"] == 0
    assert ig["engagement_rate"] is None  # reach 0


def test_growth_over_a_range_with_both_snapshots(
    report_env: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["report", "--org", "org-a", "--from", str(DAY), "--to", str(DAY), "--format", "csv"])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    header = out[0].split(",")
    fb = dict(
        zip(header, next(line for line in out if line.startswith("fb-1")).split(","), strict=True)
    )
    assert (fb["followers_start"], fb["followers_end"], fb["follower_growth"]) == (
        "1000",
        "1010",
        "10",
    )


def test_table_format_and_bad_input(
    report_env: sa.Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--org", "org-b", "--from", str(BEFORE), "--to", str(DAY)]) == 0
    table = capsys.readouterr().out
    assert "li-1" in table and "x-1" in table and "NULL" in table
    assert main(["report", "--org", "nobody", "--from", str(DAY), "--to", str(DAY)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Unknown organization 'nobody'" in err
    assert main(["report", "--org", "org-a", "--from", str(DAY), "--to", str(BEFORE)]) == 2
    assert "is before --from" in capsys.readouterr().err
    assert main(["report", "--org", "org-a", "--from", "2025-01-01", "--to", "2025-01-02"]) == 0
    assert "No KPIs for org-a" in capsys.readouterr().out
