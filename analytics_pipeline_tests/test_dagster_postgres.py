"""Dagster's own storage on PostgreSQL, configured exactly as deploy/dagster.postgres.yaml."""

import dagster as dg

from analytics_pipeline_tests.helpers import dagster_postgres_config

partitions = dg.StaticPartitionsDefinition(["a", "b"])


@dg.asset(partitions_def=partitions)
def probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 1})


def test_a_materialization_runs_on_postgres_storage(postgres_url, tmp_path, monkeypatch):
    config, env = dagster_postgres_config(postgres_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dagster.yaml").write_text(config)

    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        result = dg.materialize([probe], instance=instance, partition_key="b")
        assert result.success
        # Read back through the event log: the write path is what the scheme pitfall breaks.
        assert instance.get_materialized_partitions(dg.AssetKey("probe")) == {"b"}
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert len(instance.all_logs(result.run_id)) > 5
    finally:
        instance.dispose()
