"""The Prometheus alert rules: valid, and each with a `promtool test rules` unit test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

RULES = Path(__file__).resolve().parents[2] / "monitoring" / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: `make stack-up` installs it (Debian package prometheus)"
    return subprocess.run([binary, *args], cwd=RULES, capture_output=True, text=True, timeout=120)


def test_the_rules_are_valid() -> None:
    result = promtool("check", "rules", "rules/pipeline.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", "tests/pipeline_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rule_has_a_unit_test() -> None:
    rules = yaml.safe_load((RULES / "rules" / "pipeline.yml").read_text())
    tested = yaml.safe_load((RULES / "tests" / "pipeline_test.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    covered = {
        case["alertname"]
        for test in tested["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert names == covered


def test_luigids_collector_survives_a_task_that_fails_without_running() -> None:
    """Luigi's own collector raises TypeError there (time_running is None); ours counts it."""
    from types import SimpleNamespace

    import pytest
    from luigi.contrib.prometheus_metric import PrometheusMetricsCollector

    from monitoring.metrics import SafePrometheusCollector

    task = SimpleNamespace(family="Never", params={}, time_running=None, updated=1700000000.0)
    with pytest.raises(TypeError):
        PrometheusMetricsCollector().handle_task_failed(task)
    ours = SafePrometheusCollector()
    ours.handle_task_failed(task)
    ours.handle_task_disabled(task, None)
    text = ours.generate_latest().decode()
    assert 'luigi_task_failed_total{family="Never"} 1.0' in text
    assert 'luigi_task_disabled_total{family="Never"} 1.0' in text
