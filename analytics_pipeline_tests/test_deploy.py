"""deploy/: the Helm values use only keys the official Dagster chart knows, the instance config
they add is valid Dagster config, and the docker-compose services fit together.

`CHART_KEYS` is the chart's schema for the parts we set, transcribed from dagster-io/dagster
`helm/dagster/schema/schema/charts/` (dagster/values.py, subschema/daemon.py, run_launcher.py,
postgresql.py, dagster_user_deployments/subschema/user_deployments.py) and the instance
ConfigMap template `helm/dagster/templates/configmap-instance.yaml` (the runMonitoring keys it
renders). A key path of ours outside it (a typo, a key of another chart version) fails.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"

_IMAGE = ("image.repository", "image.tag", "image.pullPolicy")
_SECRET_LIST = ("[].name",)
CHART_KEYS = {
    "dagster-user-deployments": {"enabled", "deployments[]"},
    "dagster-user-deployments.deployments[]": {
        "name", "port", "codeServerArgs[]", "dagsterApiGrpcArgs[]",
        "includeConfigInLaunchedRuns.enabled", "env[].name", "env[].value",
        "envSecrets[].name", "envConfigMaps[].name", "labels", "resources", *_IMAGE,
    },
    "runLauncher": {"type", "config.k8sRunLauncher"},
    "runLauncher.config.k8sRunLauncher": {
        "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
        "envSecrets[].name", "envConfigMaps[].name", "envVars[]", "labels", "resources",
        "failPodOnRunFailure", "runK8sConfig.containerConfig", "runK8sConfig.podSpecConfig",
        "runK8sConfig.jobSpecConfig", "runK8sConfig.jobMetadata",
    },
    "postgresql": {
        "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
        "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service.port",
    },
    "generatePostgresqlPasswordSecret": {""},
    "telemetry": {"enabled"},
    "dagsterDaemon": {
        "enabled", "heartbeatTolerance", "runCoordinator.enabled", "runCoordinator.type",
        "runCoordinator.config.queuedRunCoordinator.maxConcurrentRuns",
        "runCoordinator.config.queuedRunCoordinator.dequeueIntervalSeconds",
        "runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits[].key",
        "runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits[].value",
        "runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits[].value"
        ".applyLimitPerUniqueValue",
        "runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits[].limit",
        "runMonitoring.enabled", "runMonitoring.startTimeoutSeconds",
        "runMonitoring.cancelTimeoutSeconds", "runMonitoring.maxResumeRunAttempts",
        "runMonitoring.pollIntervalSeconds", "runMonitoring.freeSlotsAfterRunEndSeconds",
        "runRetries.enabled", "runRetries.maxRetries",
    },
    "additionalInstanceConfig": {"*"},  # free-form dagster.yaml: validated by Dagster below
}  # fmt: skip
# Below these, Kubernetes objects (resources, containerConfig...) are free-form.
FREE_FORM = ("resources", "runK8sConfig.containerConfig", "labels")


def _values() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def _paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Every leaf key path of `node` ("a.b[].c"); list items add "[]"."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _paths(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list) and node:
        for item in node:
            yield from _paths(item, f"{prefix}[]")
    else:
        yield prefix


def _chart_paths() -> set[str]:
    return {
        f"{section}.{key}" if key else section
        for section, keys in CHART_KEYS.items()
        for key in keys
    }


def _known(path: str) -> bool:
    """`path` is a chart key, or lies below a free-form one (Kubernetes objects, "*")."""
    paths = _chart_paths()
    if path in paths:
        return True
    free = [k.removesuffix(".*") for k in paths if k.endswith(".*") or k.endswith(FREE_FORM)]
    return any(path.startswith(f"{prefix}.") for prefix in free)


def test_every_helm_key_of_ours_exists_in_the_chart_schema():
    unknown = [path for path in _paths(_values()) if not _known(path)]
    assert not unknown, f"keys the Dagster chart does not have: {unknown}"


def test_the_key_check_rejects_a_misspelt_key():
    assert not _known("dagsterDaemon.runCoordinator.config.queuedRunCoordinator.maxConcurentRuns")
    assert not _known("runLauncher.config.k8sRunLauncher.envSecret[].name")
    assert _known("dagsterDaemon.runMonitoring.pollIntervalSeconds")


def test_the_helm_values_launch_on_kubernetes_with_the_platform_limit_and_postgres():
    values = _values()
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    project = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())["run_queue"]
    assert queued["tagConcurrencyLimits"][0]["key"] == project["tag_concurrency_limits"][0]["key"]
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert "analytics_pipeline.definitions" in deployment["codeServerArgs"]


def test_the_additional_instance_config_is_valid_dagster_config(tmp_path, monkeypatch):
    extra = _values()["additionalInstanceConfig"]
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(extra))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert not instance.run_retries_retry_on_asset_or_op_failure


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())


def test_the_compose_services_fit_together():
    services = _compose()["services"]
    assert {"postgres", "code-server", "webserver", "daemon", "dagster-init"} <= services.keys()
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    (location,) = workspace["load_from"]
    grpc = location["grpc_server"]
    code_server = services["code-server"]["command"]
    assert grpc["host"] == "code-server" and str(grpc["port"]) in code_server
    assert grpc["location_name"] in code_server and "analytics_pipeline.definitions" in code_server
    for name in ("webserver", "daemon"):
        assert "/opt/dagster/workspace.yaml" in services[name]["command"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "-c constraints.txt" in dockerfile and "deploy/dagster.postgres.yaml" in dockerfile


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_parses_the_file(tmp_path):
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env_file = DEPLOY / "analytics.env"
    created = not env_file.exists()
    if created:  # the compose file names it; the example stands in for the real one
        shutil.copyfile(DEPLOY / "analytics.env.example", env_file)
    try:
        result = subprocess.run(
            [*cli, "-f", str(DEPLOY / "docker-compose.yaml"), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        if created:
            env_file.unlink()
    assert result.returncode == 0, result.stderr
