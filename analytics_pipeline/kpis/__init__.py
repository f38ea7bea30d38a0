"""KPIs computed with pandas from the warehouse's daily facts (Dagster-free, SQL-free).

- `definitions.py`: what counts as an engagement on each platform, and the rate rules;
- `content.py`: `content_performance_daily` (one row per content item per day);
- `account.py`: `account_kpis_daily` (one row per integration per day);
- `periods.py`, `rollup.py`: ISO weeks and months, and the rollups of the daily KPIs over a
  period or any range per integration, platform or organization (`kpi_rollups`, `report`);
- `report.py`: the `report` command's table, CSV and JSON renderings.

Inputs and outputs are DataFrames; `warehouse/kpis.py` reads and writes them.
"""
