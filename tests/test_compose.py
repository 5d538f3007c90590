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
    "alertmanager",
    "alert-relay",
    "grafana",
    "luigid",
]


REDASH_SECRETS = ("REDASH_DB_PASSWORD", "REDASH_COOKIE_SECRET", "REDASH_SECRET_KEY")


def image_version(service: str) -> tuple[int, ...]:
    tag = SERVICES[service]["image"].rsplit(":", 1)[1]
    return tuple(int(p) for p in re.findall(r"\d+", tag)[:2])


def compose_secrets() -> set[str]:
    """The variables the compose file requires or passes on."""
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))


def test_docker_compose_accepts_the_file_with_the_env_make_writes(tmp_path: Path) -> None:
    """A fresh clone: `make` writes .env from .env.example with generated secrets, and
    `docker compose config` passes with nothing else set."""
    from stack.envfile import write

    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: `make stack-up` installs it (Debian docker-compose)"
    env_file = tmp_path / ".env"
    assert write(env_file, ROOT / ".env.example")
    env = {k: v for k, v in os.environ.items() if k not in compose_secrets()}
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file)]
        + ["config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_a_missing_secret_stops_the_stack_with_a_clear_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in compose_secrets()}
    env.update({name: "x" for name in compose_secrets() - {"GRAFANA_ADMIN_PASSWORD"}})
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


# Which secret each service is handed (the rest of its environment is settings).
SECRETS_BY_SERVICE = {
    "postgres": {"PIPELINE_PG_PASSWORD"},
    "clickhouse": {"CLICKHOUSE_PASSWORD"},
    "elasticsearch": {"ELASTIC_PASSWORD"},
    "es-setup": {"ELASTIC_PASSWORD", "KIBANA_SYSTEM_PASSWORD", "LOGS_WRITER_PASSWORD"},
    "kibana": {"KIBANA_SYSTEM_PASSWORD", "KIBANA_ENCRYPTION_KEY"},
    "kibana-setup": {"ELASTIC_PASSWORD"},
    "filebeat": {"LOGS_WRITER_PASSWORD"},
    "grafana": {"GRAFANA_ADMIN_PASSWORD", "CLICKHOUSE_PASSWORD"},
    "alert-relay": {"TELEGRAM_BOT_TOKEN"},
    "bootstrap": {"PIPELINE_PG_PASSWORD", "CLICKHOUSE_PASSWORD"},
    "crm": {"CRM_TOKEN"},
    "runner": {"PIPELINE_PG_PASSWORD", "CLICKHOUSE_PASSWORD", "CRM_TOKEN", "TELEGRAM_BOT_TOKEN"},
    "worker": {"PIPELINE_PG_PASSWORD", "TELEGRAM_BOT_TOKEN"},
    "redash-provision": {"CLICKHOUSE_PASSWORD", "PIPELINE_REDASH_API_KEY"},
    "redash-postgres": {"REDASH_DB_PASSWORD"},
    "redash-redis": set(),
}
REDASH_APP = {"REDASH_DB_PASSWORD", "REDASH_COOKIE_SECRET", "REDASH_SECRET_KEY"}


def test_each_service_gets_only_the_secrets_it_uses() -> None:
    """No env_file hands every secret to every container: each service names its own."""
    secret = re.compile(r"\$\{([A-Z0-9_]*(?:PASSWORD|TOKEN|SECRET|_KEY))\b")
    for name, service in SERVICES.items():
        assert "env_file" not in service, name
        used = set(secret.findall(yaml.safe_dump(service)))
        expected = SECRETS_BY_SERVICE.get(name, REDASH_APP if name.startswith("redash-") else set())
        assert used == expected, f"{name}: {sorted(used)}"


def test_every_container_has_a_log_size_limit() -> None:
    for name, service in SERVICES.items():
        logging = service.get("logging", {})
        assert logging.get("driver") == "json-file", name
        assert logging["options"]["max-size"] and logging["options"]["max-file"], name


def test_clickhouse_has_a_password_and_the_crm_stand_in_is_internal_with_a_token() -> None:
    assert SERVICES["clickhouse"]["environment"]["CLICKHOUSE_PASSWORD"].startswith(
        "${CLICKHOUSE_PASSWORD:?"
    )
    crm = SERVICES["crm"]
    assert crm["networks"] == ["internal"] and "ports" not in crm
    assert COMPOSE["networks"]["internal"] == {"internal": True}
    assert crm["environment"]["PIPELINE_CRM_TOKEN"].startswith("${CRM_TOKEN:?")
    assert "internal" in SERVICES["runner"]["networks"]
    assert (
        SERVICES["runner"]["environment"]["PIPELINE_CRM_TOKEN"]
        == crm["environment"]["PIPELINE_CRM_TOKEN"]
    )


def test_elasticsearch_and_kibana_have_security_on_and_filebeat_ships_authenticated() -> None:
    es = SERVICES["elasticsearch"]["environment"]
    assert es["xpack.security.enabled"] == "true" and es["ELASTIC_PASSWORD"].startswith("${")
    kibana = SERVICES["kibana"]["environment"]
    assert kibana["ELASTICSEARCH_USERNAME"] == "kibana_system"
    assert SERVICES["kibana"]["depends_on"]["es-setup"]["condition"] == (
        "service_completed_successfully"
    )
    filebeat = SERVICES["filebeat"]
    assert filebeat["image"].rsplit(":", 1)[1] == SERVICES["elasticsearch"]["image"].rsplit(":")[-1]
    config = yaml.safe_load((ROOT / "monitoring" / "filebeat" / "filebeat.yml").read_text())
    output = config["output.elasticsearch"]
    assert output["username"] == "logs_writer" and output["password"] == "${LOGS_WRITER_PASSWORD}"
    runtime = COMPOSE["x-app"]["environment"]["PIPELINE_RUNTIME_DIR"]
    paths = config["filebeat.inputs"][0]["paths"]
    assert f"{runtime}:ro" in " ".join(filebeat["volumes"]).replace("pipeline-data:", "")
    assert all(path.startswith(f"{runtime}/logs/") for path in paths)
    decode = config["processors"][0]["decode_json_fields"]
    assert decode["document_id"] == "event.id"  # the record's own id: stored once
    assert output["index"] == "logs-pipeline-production"  # the data stream of PIPELINE_ENV
    assert COMPOSE["x-app"]["environment"]["PIPELINE_ENV"] == "production"
    setup = (ROOT / "monitoring" / "elasticsearch" / "setup.sh").read_text()
    for piece in ("kibana_system/_password", "_ilm/policy/pipeline-logs", "logs_writer"):
        assert piece in setup


def test_the_log_data_stream_has_a_lifecycle_that_deletes_old_logs() -> None:
    import json

    folder = ROOT / "monitoring" / "elasticsearch"
    template = json.loads((folder / "index-template.json").read_text())
    policy = json.loads((folder / "ilm-policy.json").read_text())
    assert template["data_stream"] == {} and template["index_patterns"] == ["logs-pipeline-*"]
    assert template["template"]["settings"]["index.lifecycle.name"] == "pipeline-logs"
    assert "delete" in policy["policy"]["phases"]["delete"]["actions"]
    role = json.loads((folder / "writer-role.json").read_text())
    assert role["indices"][0]["privileges"][0] == "create_doc"  # no update, no delete


def test_alertmanager_routes_to_the_relay_and_prometheus_to_alertmanager() -> None:
    am = yaml.safe_load((ROOT / "monitoring" / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in am["receivers"]}
    assert am["route"]["receiver"] == "telegram"
    receiver = receivers["telegram"]["webhook_configs"][0]
    assert receiver["url"] == "http://alert-relay:9095/alertmanager"
    relay = SERVICES["alert-relay"]
    assert relay["command"][:3] == ["python", "-m", "monitoring.alert_relay"]
    prometheus = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    targets = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    assert SERVICES["alertmanager"]["image"].startswith("prom/alertmanager:v0.")


def _config(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` of the file with the env ``make`` writes."""
    from stack.envfile import write

    env_file = tmp_path / ".env"
    if not env_file.exists():
        assert write(env_file, ROOT / ".env.example")
    env = {k: v for k, v in os.environ.items() if k not in compose_secrets()}
    return subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file)]
        + ["config", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _mounts(service: dict) -> dict[str, str]:
    """Mount point -> volume, from either syntax `docker-compose config` prints."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found[volume["target"]] = volume["source"]
        else:
            source, target = volume.split(":")[:2]
            found[target] = source
    return found


def test_the_inbox_workers_scale_and_share_the_runtime_folder_and_luigid(tmp_path: Path) -> None:
    """`docker compose up --scale worker=N` runs N workers: nothing in the worker service pins
    one container (a name, a host port), each runs the watcher against the one luigid, on the
    runtime volume the runner's cron sweeps use."""
    result = _config(tmp_path)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    worker, runner = services["worker"], services["runner"]
    assert "container_name" not in worker and "ports" not in worker, "it could not scale"
    assert worker["command"][:4] == ["python", "-m", "pipeline.inbox", "watch"]
    assert "--local-scheduler" not in worker["command"]  # luigid hands out the batches
    assert worker["environment"]["LUIGI_CONFIG_PATH"].endswith("luigi-client.cfg")
    client = (ROOT / "config/compose/luigi-client.cfg").read_text()
    assert "scheduler_url = http://luigid:8082" in client
    assert worker["depends_on"]["luigid"]["condition"] == "service_healthy"
    shared, mounts = _mounts(runner), _mounts(worker)
    runtime = worker["environment"]["PIPELINE_RUNTIME_DIR"]
    assert mounts[runtime] == shared[runtime] == "pipeline-data"
    luigid = (ROOT / "config/compose/luigid.cfg").read_text()
    assert re.search(r"^postgres_loads = \d+", luigid, re.M), "luigid caps the loads at once"
    services_listed = _config(tmp_path, "--services").stdout.split()
    assert "worker" in services_listed
