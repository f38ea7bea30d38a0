"""The Dagster wiring: the only package of the project that imports dagster.

- `partitions.py`: date x integration partitions, range-run tags, run batches, a step's keys;
- `resources.py`: the warehouse and the platform clients, typed configuration shown in the UI;
- `assets.py`, `integration_run.py`, `platform_slots.py`: the asset specs and the one ingestion
  step (its worker threads, stop handling, what already landed, its slot per platform);
- `checks.py`: asset checks on what the run wrote;
- `settle.py`: the account of an ingestion run that ended without the step's own (a
  Terminate between two of its events, a crashed run worker);
- `automation.py`: the job, schedules and sensors;
- `kpi_assets.py`, `kpi_checks.py`, `kpi_automation.py`: the daily KPI tables;
- `kpi_rollup_assets.py`, `kpi_rollup_checks.py`, `kpi_rollup_automation.py`: their weekly and
  monthly rollups;
- `report_assets.py`: `social_media_report`, the one-row-per-item table dashboards read;
- `runs.py`, `launch.py`, `dagster_home.py`, `recovery.py`: the CLI's and the demo's runs,
  launched through the instance, on a $DAGSTER_HOME initialized once.

`analytics_pipeline/definitions.py` assembles them into the one `dg.Definitions`.
"""
