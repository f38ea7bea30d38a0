"""KPIs computed with pandas from the warehouse's daily facts (Dagster-free, SQL-free).

- `definitions.py`: what counts as an engagement on each platform, and the rate rules;
- `content.py`: `content_performance_daily` (one row per content item per day);
- `account.py`: `account_kpis_daily` (one row per integration per day).

Inputs and outputs are DataFrames; `warehouse/kpis.py` reads and writes them.
"""
