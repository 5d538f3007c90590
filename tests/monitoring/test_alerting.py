"""Alerting that reaches people: a firing rule goes from a real Prometheus through a real
Alertmanager (the stack's generated configuration) and the project's alert relay to a local
server speaking Telegram's Bot API; without a token the relay writes to the outbox. A scheduled
command with nothing to do counts as a success for FlowLate."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import luigi
import pytest
import requests

from config.settings import load_settings
from monitoring import alert_relay, metrics
from pipeline.cron import DEFAULT_CRONTAB, parse_crontab
from stack.servers import Alertmanager, AlertRelay, Prometheus, Server
from tests.monitoring.test_logs import free_port
from tests.systems.test_telegram import OK, BotApi

TOKEN = "424242:relay-secret-token"
TEST_RULE = """groups:
  - name: delivery-test
    rules:
      - alert: DeliveryTest
        expr: vector(1)
        # Fires after Prometheus has found Alertmanager (its discovery updates every 5 s; what
        # fires before is dropped and sent again only a minute later).
        for: 8s
        labels:
          severity: critical
          flow: sales
        annotations:
          summary: "A rule that always fires"
          description: "Proves the way from Prometheus to Telegram."
"""


def payload(status: str = "firing") -> dict[str, object]:
    return {
        "version": "4",
        "status": status,
        "commonLabels": {"alertname": "FlowLate", "severity": "warning", "instance": "local"},
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": "FlowLate", "flow": "sales", "job": "luigi_etl"},
                "annotations": {
                    "summary": "Flow sales has not succeeded for 8d",
                    "description": "Look at the flow's last runs in the luigid UI.",
                },
                "startsAt": "2024-01-15T10:00:00.000Z",
            }
        ],
    }


def test_the_relay_writes_one_readable_message_per_notification() -> None:
    text = alert_relay.message(payload())
    assert text.splitlines()[0] == "🔥 FlowLate (warning)"
    assert "Flow sales has not succeeded for 8d" in text and "flow=sales" in text
    assert "job=" not in text and "since 2024-01-15 10:00 UTC" in text
    resolved = alert_relay.message(payload("resolved"))
    assert resolved.startswith("✅ Resolved: FlowLate") and "luigid UI" not in resolved


def test_the_entry_tasks_are_the_crontab_tasks() -> None:
    families = {
        shlex.split(entry.command)[3] for entry in parse_crontab(DEFAULT_CRONTAB.read_text())
    }
    assert metrics.entry_tasks() == families
    assert {family.split(".")[0] for family in families} == set(metrics.FLOW_MAX_AGE_S)


@pytest.mark.integration
def test_an_idle_inbox_sweep_counts_as_a_success(stack: None, runtime: Path) -> None:
    from pipeline.inbox.tasks import ProcessInbox
    from pipeline.systems.redis import client

    redis = client()
    redis.hdel("metrics:last_success", "inbox")
    before = time.time()
    assert luigi.build([ProcessInbox()], local_scheduler=True, log_level="WARNING")
    stamp = redis.hget("metrics:last_success", "inbox")
    assert stamp is not None and float(stamp) >= before


class PrometheusWithTestRule(Prometheus):
    """The stack's Prometheus configuration plus a rule that always fires."""

    def prepare(self) -> bool:
        changed = super().prepare()
        rule = self.home / "delivery-test.yml"
        rule.write_text(TEST_RULE)
        text = self.config_path().read_text()
        if str(rule) not in text:
            text = text.replace("rule_files:\n", f"rule_files:\n  - {rule}\n", 1)
            text = text.replace("evaluation_interval: 5s", "evaluation_interval: 1s")
            self.config_path().write_text(text)
            changed = True
        return changed


@pytest.mark.integration
def test_a_firing_rule_reaches_telegram_through_prometheus_and_alertmanager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = BotApi([OK])
    ports = {name: free_port() for name in ("prometheus", "alertmanager", "relay", "nothing")}
    for name, value in {
        "PIPELINE_STACK_DIR": str(tmp_path / "stack"),
        "PIPELINE_PROMETHEUS_URL": f"http://127.0.0.1:{ports['prometheus']}",
        "PIPELINE_ALERTMANAGER_URL": f"http://127.0.0.1:{ports['alertmanager']}",
        "PIPELINE_ALERT_RELAY_URL": f"http://127.0.0.1:{ports['relay']}",
        # The scrape targets are nobody here: this is about the way out.
        "PIPELINE_PUSHGATEWAY_URL": f"http://127.0.0.1:{ports['nothing']}",
        "PIPELINE_LUIGID_URL": f"http://127.0.0.1:{ports['nothing']}",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_CHAT_ID": "-100123",
        "TELEGRAM_API_URL": api.url,
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    servers: list[Server] = [
        AlertRelay(settings),
        Alertmanager(settings),
        PrometheusWithTestRule(settings),
    ]
    try:
        for server in servers:
            server.start(timeout=60)
        deadline = time.monotonic() + 60
        while not any("DeliveryTest" in call.get("text", "") for call in api.calls):
            assert time.monotonic() < deadline, f"nothing reached the Bot API: {api.calls}"
            time.sleep(0.5)
    finally:
        for server in reversed(servers):
            server.stop()
        api.server.shutdown()
        api.server.server_close()
    call = next(c for c in api.calls if "DeliveryTest" in c.get("text", ""))
    assert call["path"] == f"/bot{TOKEN}/sendMessage" and call["chat_id"] == "-100123"
    assert call["text"].startswith("🔥 DeliveryTest (critical)")
    assert "A rule that always fires" in call["text"] and "flow=sales" in call["text"]
    relay_log = (tmp_path / "stack" / "alert-relay" / "alert-relay.out").read_text()
    assert TOKEN not in relay_log
    generated = (tmp_path / "stack" / "alertmanager" / "alertmanager.yml").read_text()
    assert f"127.0.0.1:{ports['relay']}/alertmanager" in generated


@pytest.mark.integration
def test_without_a_token_the_relay_writes_the_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runtime: Path
) -> None:
    port = free_port()
    monkeypatch.setenv("PIPELINE_STACK_DIR", str(tmp_path / "stack"))
    monkeypatch.setenv("PIPELINE_ALERT_RELAY_URL", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.setenv("PIPELINE_ENV_FILE", str(tmp_path / "no.env"))  # no token from .env
    relay = AlertRelay(load_settings())
    try:
        relay.start(timeout=30)
        url = f"http://127.0.0.1:{port}/alertmanager"
        assert requests.post(url, json=payload(), timeout=10).status_code == 200
        assert requests.post(url, data=b"[1]", timeout=10).status_code == 400
    finally:
        relay.stop()
    sent = [json.loads(p.read_text()) for p in (runtime / "outbox").glob("*-alertmanager-*.json")]
    assert [s["text"].splitlines()[0] for s in sent] == ["🔥 FlowLate (warning)"]


def test_alertmanagers_configuration_is_valid_and_test_metrics_alert_nobody() -> None:
    import subprocess

    config = str(Path(__file__).resolve().parents[2] / "monitoring/alertmanager/alertmanager.yml")

    def amtool(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["amtool", *args], capture_output=True, text=True, timeout=30, check=False
        )

    assert amtool("check-config", config).returncode == 0

    def route(*labels: str) -> str:
        return amtool("config", "routes", "test", f"--config.file={config}", *labels).stdout.strip()

    assert route("alertname=FlowLate", "flow=sales", "instance=production") == "telegram"
    assert route("alertname=TargetDown", "job=luigid", "instance=luigid:8082") == "telegram"
    assert route("alertname=TaskFailures", "instance=tests") == "nobody"
