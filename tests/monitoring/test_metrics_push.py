"""When the metrics reach the Pushgateway: a success pushes at most every
``PIPELINE_METRICS_PUSH_EVERY_S`` (a lease in Redis shared by every process), a failure at once,
and every run once more as its worker ends, so what the Pushgateway holds after a run is the
whole run, never a throttled part of it."""

from __future__ import annotations

from pathlib import Path

import luigi
import pytest
import requests

from config.settings import load_settings
from monitoring import metrics
from pipeline.core.tasks import PipelineTask
from pipeline.systems.redis import client


class Step(PipelineTask):
    """A task of this test: done once its marker file exists."""

    task_namespace = "pushtest"
    n = luigi.IntParameter(description="The step's place in the chain.")
    fail = luigi.BoolParameter(default=False, description="Fail instead.")
    worker_timeout = None  # run in this process: the pushes are counted here

    def requires(self) -> list[Step]:
        return [Step(n=self.n - 1)] if self.n > 1 else []

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(load_settings().paths.runtime / f"push-step-{self.n}"))

    def run(self) -> None:
        if self.fail:
            raise RuntimeError("this step fails")
        Path(self.output().path).write_text("done")


def _runs_at_the_gateway(family: str, outcome: str) -> float:
    """``pipeline_task_runs_total`` of ``family`` as the Pushgateway holds it for this session."""
    settings = load_settings().monitoring
    text = requests.get(f"{settings.pushgateway_url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith("pipeline_task_runs_total{")
            and f'instance="{settings.metrics_instance}"' in line
            and f'task_family="{family}"' in line
            and f'outcome="{outcome}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def counted_pushes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every push that reached the Pushgateway from this process (the real push, counted)."""
    import prometheus_client

    pushes: list[str] = []
    real = prometheus_client.pushadd_to_gateway

    def counting(*args: object, **kwargs: object) -> None:
        pushes.append("push")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(prometheus_client, "pushadd_to_gateway", counting)
    return pushes


@pytest.mark.integration
def test_a_run_of_many_tasks_pushes_twice_and_the_gateway_has_every_task(
    stack: None, runtime: Path, monkeypatch: pytest.MonkeyPatch, counted_pushes: list[str]
) -> None:
    monkeypatch.setenv("PIPELINE_METRICS_PUSH_EVERY_S", "600")
    client().delete(f"{metrics.PREFIX}push_lease")
    before = _runs_at_the_gateway("pushtest.Step", "success")
    assert luigi.build([Step(n=8)], local_scheduler=True, workers=1, log_level="WARNING")
    # The first success takes the lease and pushes; the seven after it find it taken; the
    # worker's end pushes the whole run.
    assert len(counted_pushes) == 2
    assert _runs_at_the_gateway("pushtest.Step", "success") == before + 8


@pytest.mark.integration
def test_a_failure_pushes_at_once_even_inside_the_interval(
    stack: None, runtime: Path, monkeypatch: pytest.MonkeyPatch, counted_pushes: list[str]
) -> None:
    monkeypatch.setenv("PIPELINE_METRICS_PUSH_EVERY_S", "600")
    client().set(f"{metrics.PREFIX}push_lease", "1", px=600_000)  # somebody just pushed
    before = _runs_at_the_gateway("pushtest.Step", "failure")
    metrics.push(throttled=True)
    assert counted_pushes == [], "inside the interval a success does not push"
    assert not luigi.build(
        [Step(n=1, fail=True)], local_scheduler=True, workers=1, log_level="CRITICAL"
    )
    assert len(counted_pushes) == 2  # the failure, then the worker's end
    assert _runs_at_the_gateway("pushtest.Step", "failure") == before + 1
    client().delete(f"{metrics.PREFIX}push_lease")


def test_the_interval_is_a_setting() -> None:
    never = load_settings({"PIPELINE_METRICS_PUSH_EVERY_S": "0"})
    assert never.monitoring.metrics_push_every_s == 0
    assert load_settings({}).monitoring.metrics_push_every_s == 5.0
