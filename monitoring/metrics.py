"""Prometheus metrics of the flows, pushed to the Pushgateway (batch jobs), and luigid's collector.

Luigi's events (START, SUCCESS, FAILURE, BROKEN_TASK, TIMEOUT, PROCESS_FAILURE, PROCESSING_TIME)
record, per flow and task family, runs by outcome and their duration; the flows record rows read,
written and rejected per dataset, and alerts raised. Tasks run in several processes (the worker's
task processes with ``--workers 2``: ``pipeline.core.runners``), so the cumulative values live in
Redis (hash increments, atomic across processes) and every push sends the whole current set as one
group (``job="luigi_etl"``): counters only ever grow, and a push replacing the group loses nothing.
Pushed with ``pushadd`` (POST): at once when a task fails, when a run's worker ends (the run's last
word), and after a task's success at most every ``PIPELINE_METRICS_PUSH_EVERY_S`` (5 s; a lease in
Redis shared by every process: a year's backfill is ~200 tasks, and a push per task cost ~8 ms
each). A Pushgateway that is down is logged and never fails a task. Labels are bounded: flow, task
family, outcome, dataset, status, metric, kind — never a file name, a date or an id.

Metrics (all prefixed ``pipeline_``):

- ``task_runs_total{flow,task_family,outcome}`` — outcome: success, failure, broken, timeout,
  process_failure;
- ``task_seconds_total`` / ``task_timed_runs_total{flow,task_family}`` (mean duration =
  their rates' ratio), ``task_last_duration_seconds``;
- ``rows_total{flow,dataset,kind}`` — kind: read, written, rejected;
- ``files{dataset,status}`` — files per flag status (from the Redis counts);
- ``alerts_total{metric,kind}`` — kind: alert, repeat, recovery;
- ``flow_last_success_timestamp_seconds{flow}`` — set only on success;
- ``flow_max_age_seconds{flow}`` — its schedule plus a margin (for the freshness alert);
- ``metrics_started_timestamp_seconds`` — when this group was first pushed (a flow that has not
  succeeded within its schedule plus margin since then never did: FlowNeverSucceeded).

A scheduled command that finds its work already done (an idle inbox sweep, an alert slot already
checked) succeeds too: Luigi does not run a complete task, so the flow's entry task
(``entry_tasks()``, the crontab's tasks) found complete sets the flow's last success.

The log shipper pushes its own group (``job="log_shipper"``): records shipped and dropped.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from pathlib import Path
from typing import Any

import luigi
import luigi.worker

log = logging.getLogger(__name__)

JOB = "luigi_etl"
PREFIX = "metrics:"
# The schedule of each flow (crontab) plus a margin: older than this, the flow is late.
FLOW_MAX_AGE_S = {
    "inbox": 30 * 60,
    "retention": 26 * 3600,
    "activity": 26 * 3600,
    "reports": 26 * 3600,
    "alerts": 45 * 60,
    "telemetry": 26 * 3600,
    "sales": 8 * 24 * 3600,
}
# Each flow's scheduled task (the crontab's): found complete, it is a successful run. The crontab
# is read beside the code or in the working folder (cron runs commands from the project root).
CRONTAB_TASK = re.compile(r"^[^#=]*\bluigi\s+--module\s+pipeline\.\w+\s+(\w+\.\w+)", re.M)


@functools.cache
def entry_tasks() -> frozenset[str]:
    """The task families the crontab runs (``flow.Task``)."""
    from config.settings import PROJECT_ROOT

    for folder in (PROJECT_ROOT, Path.cwd()):
        try:
            return frozenset(CRONTAB_TASK.findall((folder / "crontab").read_text("utf-8")))
        except OSError:
            continue
    return frozenset()


OUTCOMES = {
    luigi.Event.SUCCESS: "success",
    luigi.Event.FAILURE: "failure",
    luigi.Event.BROKEN_TASK: "broken",
    luigi.Event.TIMEOUT: "timeout",
    luigi.Event.PROCESS_FAILURE: "process_failure",
}


def flow_of(task: luigi.Task) -> str:
    """The flow a task belongs to: its Luigi namespace, which each ``pipeline/<flow>/`` package
    sets to the flow's name (bounded: the flows' names)."""
    return task.get_task_namespace() or "other"


def _redis() -> Any:
    """This process's Redis client (``pipeline.systems.redis``)."""
    from pipeline.systems.redis import client

    return client()


def record_run(task: luigi.Task, outcome: str, flow: str | None = None) -> None:
    flow = flow or flow_of(task)
    family = task.get_task_family()
    pipe = _redis().pipeline(transaction=False)  # one round trip
    pipe.hincrby(f"{PREFIX}runs", f"{flow}|{family}|{outcome}", 1)
    if outcome == "success":
        pipe.hset(f"{PREFIX}last_success", flow, f"{time.time():.3f}")
    pipe.execute()


def record_duration(task: luigi.Task, seconds: float) -> None:
    key = f"{flow_of(task)}|{task.get_task_family()}"
    pipe = _redis().pipeline(transaction=False)  # one round trip
    pipe.hincrbyfloat(f"{PREFIX}duration_sum", key, float(seconds))
    pipe.hincrby(f"{PREFIX}duration_count", key, 1)
    pipe.hset(f"{PREFIX}duration_last", key, f"{float(seconds):.6f}")
    pipe.execute()


def record_rows(
    flow: str, dataset: str, read: int = 0, written: int = 0, rejected: int = 0
) -> None:
    """Rows a flow read, wrote and rejected (best effort: metrics never fail a flow)."""
    from monitoring import tasklog

    tasklog.add_rows(read, written, rejected)
    try:
        pipe = _redis().pipeline(transaction=False)  # one round trip
        for kind, value in (("read", read), ("written", written), ("rejected", rejected)):
            if value:
                pipe.hincrby(f"{PREFIX}rows", f"{flow}|{dataset}|{kind}", int(value))
        pipe.execute()
    except Exception as exc:  # Redis away: the flow goes on
        log.warning("metrics: rows not recorded (%s)", type(exc).__name__)


def record_alert(metric: str, kind: str) -> None:
    try:
        _redis().hincrby(f"{PREFIX}alerts", f"{metric}|{kind}", 1)
    except Exception as exc:
        log.warning("metrics: alert not recorded (%s)", type(exc).__name__)


def registry() -> Any:
    """The whole current set of metrics, from Redis and the flag counts."""
    from prometheus_client import CollectorRegistry, Counter, Gauge

    from flags.ledger import Ledger

    reg = CollectorRegistry()
    redis = _redis()
    # Every hash in one round trip (a push ends every task).
    names = ["runs", "duration_sum", "duration_count", "duration_last", "rows", "alerts"]
    names.append("last_success")
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(f"{PREFIX}{name}")
    pipe.hsetnx(f"{PREFIX}started", "at", f"{time.time():.3f}")
    pipe.hget(f"{PREFIX}started", "at")
    *hashes, _, started_at = pipe.execute()
    stored = dict(zip(names, hashes, strict=True))

    def hash_items(name: str) -> list[tuple[list[str], float]]:
        return [(k.decode().split("|"), float(v)) for k, v in stored[name].items()]

    runs = Counter(
        "pipeline_task_runs",
        "Task runs by outcome",
        ["flow", "task_family", "outcome"],
        registry=reg,
    )
    for (flow, family, outcome), value in hash_items("runs"):
        runs.labels(flow, family, outcome).inc(value)
    duration_sum = Counter(
        "pipeline_task_seconds", "Seconds spent running", ["flow", "task_family"], registry=reg
    )
    duration_count = Counter(
        "pipeline_task_timed_runs", "Runs with a duration", ["flow", "task_family"], registry=reg
    )
    last = Gauge(
        "pipeline_task_last_duration_seconds",
        "Duration of the last run",
        ["flow", "task_family"],
        registry=reg,
    )
    for (flow, family), value in hash_items("duration_sum"):
        duration_sum.labels(flow, family).inc(value)
    for (flow, family), value in hash_items("duration_count"):
        duration_count.labels(flow, family).inc(value)
    for (flow, family), value in hash_items("duration_last"):
        last.labels(flow, family).set(value)
    rows = Counter(
        "pipeline_rows", "Rows read, written, rejected", ["flow", "dataset", "kind"], registry=reg
    )
    for (flow, dataset, kind), value in hash_items("rows"):
        rows.labels(flow, dataset, kind).inc(value)
    alerts = Counter("pipeline_alerts", "Alert messages sent", ["metric", "kind"], registry=reg)
    for (metric, kind), value in hash_items("alerts"):
        alerts.labels(metric, kind).inc(value)
    success = Gauge(
        "pipeline_flow_last_success_timestamp_seconds",
        "Last success per flow",
        ["flow"],
        registry=reg,
    )
    for (flow,), value in hash_items("last_success"):
        success.labels(flow).set(value)
    max_age = Gauge(
        "pipeline_flow_max_age_seconds", "Schedule plus margin per flow", ["flow"], registry=reg
    )
    for flow, seconds in FLOW_MAX_AGE_S.items():
        max_age.labels(flow).set(seconds)
    started = Gauge(
        "pipeline_metrics_started_timestamp_seconds",
        "When this group of metrics was first pushed",
        registry=reg,
    )
    started.set(float(started_at or time.time()))
    files = Gauge("pipeline_files", "Files per flag status", ["dataset", "status"], registry=reg)
    from flags import document as doc

    counts = Ledger.from_settings().counts()
    for dataset in sorted({d for d, _ in counts} or {"sales"}):
        for status in doc.STATUSES:
            files.labels(dataset, status).set(counts.get((dataset, status), 0))
    return reg


def push(throttled: bool = False) -> bool:
    """Push the current set to the Pushgateway; False (and a warning) when it is away.
    ``throttled``: only if no process pushed within ``metrics_push_every_s`` (the values stay in
    Redis: the next push, at the latest the run's own at its end, sends them)."""
    from prometheus_client import pushadd_to_gateway

    from config.settings import load_settings

    settings = load_settings()
    every_ms = int(settings.monitoring.metrics_push_every_s * 1000)
    if throttled and every_ms > 0:
        try:
            if not _redis().set(f"{PREFIX}push_lease", "1", nx=True, px=every_ms):
                return False  # pushed a moment ago
        except Exception as exc:  # Redis away: the registry would be empty anyway
            log.warning("metrics: no push (%s)", type(exc).__name__)
            return False
    url = settings.monitoring.pushgateway_url
    # One group per environment: the tests' pushes never overwrite the demo's.
    instance = settings.monitoring.metrics_instance
    try:
        pushadd_to_gateway(
            url,
            job=JOB,
            registry=registry(),
            grouping_key={"instance": instance},
            timeout=settings.monitoring.pushgateway_timeout_s,
        )
        return True
    except Exception as exc:  # the Pushgateway or Redis away: never fail a task for metrics
        log.warning("metrics: push to %s failed: %s", url, type(exc).__name__)
        return False


def _on_outcome(event: str) -> Any:
    def handler(task: luigi.Task, *args: Any) -> None:
        try:
            record_run(task, OUTCOMES[event])
        except Exception as exc:
            log.warning("metrics: run not recorded (%s)", type(exc).__name__)
        push(throttled=event == luigi.Event.SUCCESS)

    return handler


def _push_when_workers_end() -> None:
    """Every run pushes once as its worker ends (in the process that ran ``luigi``, after its
    last task): whatever throttled pushes left out is sent."""
    original = luigi.worker.Worker.__exit__

    @functools.wraps(original)
    def __exit__(self: luigi.worker.Worker, *exc_info: Any) -> Any:
        try:
            return original(self, *exc_info)
        finally:
            push()

    luigi.worker.Worker.__exit__ = __exit__  # type: ignore[method-assign]


def _on_complete(task: luigi.Task) -> None:
    """A flow's scheduled task found complete: the run had nothing to do, which is a success."""
    if task.get_task_family() not in entry_tasks():
        return
    flow = flow_of(task)
    try:
        _redis().hset(f"{PREFIX}last_success", flow, f"{time.time():.3f}")
    except Exception as exc:
        log.warning("metrics: success not recorded (%s)", type(exc).__name__)
        return
    push(throttled=True)  # the run pushes as its worker ends


def _on_processing_time(task: luigi.Task, seconds: float) -> None:
    try:
        record_duration(task, seconds)
    except Exception as exc:
        log.warning("metrics: duration not recorded (%s)", type(exc).__name__)


def _on_start(task: luigi.Task) -> None:
    from monitoring.logs import bind

    bind(flow=flow_of(task), task_family=task.get_task_family(), task_id=task.task_id)


def install() -> None:
    """Register the event handlers (once; ``pipeline.core.tasks`` does it for every flow)."""
    if getattr(install, "done", False):
        return
    from monitoring import tasklog

    tasklog.install()
    for event in OUTCOMES:
        luigi.Task.event_handler(event)(_on_outcome(event))
    luigi.Task.event_handler(luigi.Event.PROCESSING_TIME)(_on_processing_time)
    luigi.Task.event_handler(luigi.Event.START)(_on_start)
    luigi.Task.event_handler(luigi.Event.DEPENDENCY_PRESENT)(_on_complete)
    _push_when_workers_end()
    install.done = True  # type: ignore[attr-defined]


# -- luigid ----------------------------------------------------------------------------------
try:
    from luigi.contrib.prometheus_metric import PrometheusMetricsCollector
except ImportError:  # prometheus_client missing: luigid cannot use it anyway
    PrometheusMetricsCollector = object  # type: ignore[misc,assignment]


class SafePrometheusCollector(PrometheusMetricsCollector):
    """luigid's Prometheus collector without its TypeError: a task that turns FAILED or DISABLED
    without ever running has no ``time_running``, and Luigi's handler subtracts it anyway
    (``[scheduler] metrics_collector = custom``, ``metrics_custom_import`` = this class)."""

    def handle_task_failed(self, task: Any) -> None:
        self.task_failed_counter.labels(**self._generate_task_labels(task)).inc()
        self._set_time(task)

    def handle_task_disabled(self, task: Any, config: Any) -> None:
        self.task_disabled_counter.labels(**self._generate_task_labels(task)).inc()
        self._set_time(task)

    def _set_time(self, task: Any) -> None:
        if task.time_running is not None and task.updated is not None:
            self.task_execution_time.labels(**self._generate_task_labels(task)).set(
                task.updated - task.time_running
            )
