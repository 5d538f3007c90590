"""The compose stack: valid for docker-compose, every image pinned, the production shape."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import elasticsearch
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SERVERS = [
    "postgres",
    "redis",
    "clickhouse",
    "elasticsearch",
    "kibana",
    "prometheus",
    "pushgateway",
    "grafana",
    "luigid",
]


REDASH_SECRETS = ("REDASH_DB_PASSWORD", "REDASH_COOKIE_SECRET", "REDASH_SECRET_KEY")


def image_version(service: str) -> tuple[int, ...]:
    tag = SERVICES[service]["image"].rsplit(":", 1)[1]
    return tuple(int(p) for p in re.findall(r"\d+", tag)[:2])


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: `make stack-up` installs it (Debian docker-compose)"
    env = {**os.environ, "PIPELINE_PG_PASSWORD": "x", "GRAFANA_ADMIN_PASSWORD": "x"}
    env.update({name: "x" for name in REDASH_SECRETS})
    # env_file: .env must exist for `config`; a clean clone gets it from `make` (.env.example).
    if not (ROOT / ".env").exists():
        shutil.copy(ROOT / ".env.example", ROOT / ".env")
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_a_missing_secret_stops_the_stack_with_a_clear_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GRAFANA_ADMIN_PASSWORD"}
    env["PIPELINE_PG_PASSWORD"] = "x"
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = subprocess.run(
        ["docker-compose", "--env-file", str(empty), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD in .env" in result.stderr


def test_every_image_is_pinned_to_a_version() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image}"
        assert re.search(r":v?\d+\.\d+", image), f"{name}: {image} has no version"


def test_production_versions() -> None:
    assert image_version("postgres")[0] == 16
    assert image_version("redis")[0] == 7
    assert image_version("clickhouse") >= (24, 0)
    es_major = image_version("elasticsearch")[0]
    assert int(elasticsearch.__versionstr__.split(".")[0]) == es_major
    assert image_version("kibana")[0] == es_major


def test_servers_have_healthchecks_volumes_and_wait_for_each_other() -> None:
    volumes = set(COMPOSE["volumes"])
    for name in SERVERS:
        assert "healthcheck" in SERVICES[name], name
    for name in ("postgres", "redis", "clickhouse", "elasticsearch", "prometheus", "grafana"):
        mounts = [v.split(":")[0] for v in SERVICES[name]["volumes"]]
        assert any(m in volumes for m in mounts), f"{name} keeps no named volume"
    assert "--appendonly" in SERVICES["redis"]["command"]
    runner = SERVICES["runner"]
    assert runner["command"][:3] == ["python", "-m", "pipeline.cron"]
    for dependency, condition in runner["depends_on"].items():
        expected = (
            "service_completed_successfully" if dependency == "bootstrap" else "service_healthy"
        )
        assert condition["condition"] == expected, dependency
    assert SERVICES["grafana"]["volumes"][0].startswith("./monitoring/grafana/provisioning")


def test_no_secret_is_written_in_the_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|TOKEN|SECRET|_KEY)\b\s*:", line):
            assert "${" in line, line


@pytest.mark.parametrize("path", ["Dockerfile", ".dockerignore"])
def test_the_application_image_is_defined(path: str) -> None:
    assert (ROOT / path).is_file()
    if path == "Dockerfile":
        text = (ROOT / path).read_text()
        assert re.search(r"^FROM python:3\.11\.\d+-slim", text, re.M)
        assert "USER pipeline" in text


def test_spark_cluster_matches_pyspark_and_the_runner_submits_to_it() -> None:
    pinned = re.search(r'"pyspark==([0-9.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pinned, "pyspark is pinned to the cluster's version in pyproject.toml"
    for name in ("spark-master", "spark-worker"):
        assert SERVICES[name]["image"].startswith(f"apache/spark:{pinned[1]}-"), name
        assert "healthcheck" in SERVICES[name], name
    assert "spark://spark-master:7077" in SERVICES["spark-worker"]["command"]
    assert COMPOSE["x-app"]["environment"]["PIPELINE_SPARK_MASTER"] == "spark://spark-master:7077"
    assert SERVICES["runner"]["depends_on"]["spark-master"] == {"condition": "service_healthy"}
    # The executors read the archive and write the history Parquet in the runtime volume.
    assert "pipeline-data:/var/lib/pipeline" in SERVICES["spark-worker"]["volumes"]


def test_redash_runs_with_its_own_postgres_and_redis_and_is_provisioned_on_demand() -> None:
    for name in ("redash-server", "redash-worker", "redash-scheduler", "redash-create-db"):
        assert SERVICES[name]["image"].startswith("redash/redash:10."), name
    env = SERVICES["redash-server"]["environment"]
    assert "@redash-postgres/" in env["REDASH_DATABASE_URL"]
    assert env["REDASH_REDIS_URL"].startswith("redis://redash-redis:")
    assert SERVICES["redash-create-db"]["command"] == ["create_db"]
    assert SERVICES["redash-server"]["depends_on"]["redash-create-db"] == {
        "condition": "service_completed_successfully"
    }
    provision = SERVICES["redash-provision"]
    assert provision["command"] == ["python", "-m", "monitoring.redash"]
    assert provision["profiles"] == ["provision"]
    # Redash's services get only Redash's secrets, the app's services none of Redash's.
    assert not any("PIPELINE_" in key for key in env)
    assert not any(key.startswith("REDASH_") for key in SERVICES["runner"]["environment"])
