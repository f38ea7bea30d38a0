"""The Dagster wiring: the only package of the project that imports dagster.

- `partitions.py`: date x integration partitions, range-run tags, a step's partition keys;
- `resources.py`: the warehouse and the platform clients, typed configuration shown in the UI;
- `assets.py`: the asset specs and the one ingestion step that materializes them;
- `checks.py`: asset checks on what the run wrote;
- `automation.py`: the job, schedules and sensors;
- `runs.py`: in-process runs for the CLI.

`analytics_pipeline/definitions.py` assembles them into the one `dg.Definitions`.
"""
