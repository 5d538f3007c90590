"""The local stack: `python -m stack up|down|status` on real servers.

A second, private stack is brought up on other ports in a temporary folder, so these tests can
stop it without disturbing the shared one the other tests use.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import stack.__main__ as stack_cli
from config.settings import load_settings
from stack.servers import StackError, all_servers, process_alive

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
PORTS = {
    "postgres": 25432,
    "redis": 26379,
    "clickhouse": 28123,
    "pushgateway": 29091,
    "luigid": 28082,
    "alert-relay": 29095,
    "alertmanager": 29093,
    "prometheus": 29090,
}
# Started by `up`; the log shipper is off without PIPELINE_ELASTICSEARCH_URL.
STARTED = len(PORTS)


def private_env(stack_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PIPELINE_STACK_DIR": str(stack_dir),
        "PIPELINE_PG_PORT": str(PORTS["postgres"]),
        "PIPELINE_REDIS_PORT": str(PORTS["redis"]),
        "PIPELINE_CH_PORT": "29000",
        "PIPELINE_CH_HTTP_PORT": str(PORTS["clickhouse"]),
        "PIPELINE_PUSHGATEWAY_URL": f"http://127.0.0.1:{PORTS['pushgateway']}",
        "PIPELINE_LUIGID_URL": f"http://127.0.0.1:{PORTS['luigid']}",
        "PIPELINE_PROMETHEUS_URL": f"http://127.0.0.1:{PORTS['prometheus']}",
        "PIPELINE_ALERTMANAGER_URL": f"http://127.0.0.1:{PORTS['alertmanager']}",
        "PIPELINE_ALERT_RELAY_URL": f"http://127.0.0.1:{PORTS['alert-relay']}",
        "PIPELINE_LOG_SHIPPER_URL": "http://127.0.0.1:29096",
        "PIPELINE_ELASTICSEARCH_URL": "",
    }


def stack(action: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stack", action],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A folder outside pytest's own: pytest keeps /tmp/pytest-of-<user> at mode 0700 (and puts
    it back on every session), which would lock the postgres user out of its data folder."""
    folder = Path(tempfile.mkdtemp(prefix="stack-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_up_is_idempotent_and_down_stops_exactly_what_up_started(outside_tmp: Path) -> None:
    stack_dir = outside_tmp / "stack"
    env = private_env(stack_dir)
    first = stack("up", env)
    try:
        assert first.returncode == 0, first.stdout + first.stderr
        assert first.stdout.count("started (pid") == STARTED, first.stdout
        assert "log-shipper" in first.stdout and "off (PIPELINE_ELASTICSEARCH_URL" in first.stdout

        status = stack("status", env)
        assert status.returncode == 0, status.stdout
        for name, port in PORTS.items():
            assert f"{name:<12} {port:<6}" in status.stdout and "DOWN" not in status.stdout
        assert "log-shipper  29096  -        off" in status.stdout

        # The files the stack generates (servers may rewrite their own copies deeper down).
        configs = sorted(
            p
            for p in [*stack_dir.glob("*/*"), *stack_dir.glob("postgres/data/*.conf")]
            if p.suffix in {".conf", ".xml", ".yml", ".cfg"}
        )
        assert len(configs) >= 7, configs
        before = {p: p.stat().st_mtime_ns for p in configs}
        pids = {p.stem: p.read_text().split()[0] for p in (stack_dir / "run").glob("*.pid")}

        second = stack("up", env)
        assert second.returncode == 0, second.stderr
        assert second.stdout.count("already running") == STARTED, second.stdout
        assert {p: p.stat().st_mtime_ns for p in configs} == before
        assert {p.stem: p.read_text().split()[0] for p in (stack_dir / "run").glob("*.pid")} == pids
    finally:
        down = stack("down", env)
    assert down.returncode == 0, down.stderr
    assert down.stdout.count("stopped (pid") == STARTED, down.stdout
    for pid in pids.values():
        assert not process_alive(int(pid))
    assert not any(port_open(port) for port in PORTS.values())
    assert not list((stack_dir / "run").glob("*.pid"))
    assert stack("status", env).returncode == 1


def test_a_port_taken_by_a_stranger_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", PORTS["redis"]))
        squatter.listen()
        result = subprocess.run(
            [sys.executable, "-m", "stack", "up", "--only", "redis"],
            cwd=ROOT,
            env=private_env(tmp_path / "stack"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert f"port {PORTS['redis']} is taken by a process this stack did not start" in result.stderr
    assert "Traceback" not in result.stderr


def test_not_root_and_a_package_missing_prints_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack_cli, "is_root", lambda: False)
    with pytest.raises(StackError, match=r"sudo apt-get install -y clickhouse-server"):
        stack_cli.install(["clickhouse-server"])


def test_the_shared_stack_is_healthy_and_prometheus_scrapes_it(stack: None) -> None:
    settings = load_settings()
    assert all(server.status().healthy for server in all_servers(settings))
    deadline = time.monotonic() + 30
    jobs: dict[str, str] = {}
    while time.monotonic() < deadline:
        url = f"{settings.monitoring.prometheus_url}/api/v1/targets"
        with urllib.request.urlopen(url, timeout=5) as response:
            targets = json.load(response)["data"]["activeTargets"]
        jobs = {t["labels"]["job"]: t["health"] for t in targets}
        if all(jobs.get(job) == "up" for job in ("pushgateway", "luigid", "alertmanager")):
            break
        time.sleep(1)
    assert all(jobs.get(job) == "up" for job in ("pushgateway", "luigid", "alertmanager")), jobs
    assert "filebeat" not in jobs  # compose only
    config = (settings.paths.stack / "prometheus" / "prometheus.yml").read_text()
    assert "honor_labels: true" in config
    url = f"{settings.monitoring.prometheus_url}/api/v1/alertmanagers"
    with urllib.request.urlopen(url, timeout=5) as response:
        active = json.load(response)["data"]["activeAlertmanagers"]
    assert [a["url"] for a in active] == [f"{settings.monitoring.alertmanager_url}/api/v2/alerts"]
