"""Dagster's own storage on PostgreSQL, configured exactly as deploy/dagster.postgres.yaml."""

from pathlib import Path

import dagster as dg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]

partitions = dg.StaticPartitionsDefinition(["a", "b"])


@dg.asset(partitions_def=partitions)
def probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 1})


def _socket_port(socket_dir: str) -> str:
    sockets = sorted(Path(socket_dir).glob(".s.PGSQL.*"))
    return sockets[0].name.rsplit(".", 1)[-1] if sockets else "5432"


def test_a_materialization_runs_on_postgres_storage(postgres_url, tmp_path, monkeypatch):
    url = sa.engine.make_url(postgres_url)
    config = (ROOT / "deploy" / "dagster.postgres.yaml").read_text()
    socket_dir = url.query.get("host")
    if url.host is None and isinstance(socket_dir, str):
        # The embedded test server listens on a Unix socket only: pass it as a libpq param.
        config = config.replace(
            "      db_name:\n", f"      params:\n        host: {socket_dir}\n      db_name:\n"
        )
        monkeypatch.setenv("DAGSTER_PG_HOST", "localhost")
        monkeypatch.setenv("DAGSTER_PG_PORT", _socket_port(socket_dir))
    else:
        monkeypatch.setenv("DAGSTER_PG_HOST", url.host or "127.0.0.1")
        monkeypatch.setenv("DAGSTER_PG_PORT", str(url.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_USER", url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", url.password or "")
    monkeypatch.setenv("DAGSTER_PG_DB", url.database or "postgres")
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
