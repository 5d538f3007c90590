"""What every task of the project shares: progress in the scheduler UI, failure notifications;
and what the daily and weekly flows share: ``--force`` and ``--resend`` on their wrappers, UTC
business days.

A failure message is short and safe: the task, its period, the error's type and first line
(redacted like the logs, at most 200 characters) and where to look (the run's logs), never the
raw exception; it goes through the notification ledger (``pipeline.core.notifications``). A task
killed by its ``worker_timeout`` or dying otherwise (``TIMEOUT``, ``PROCESS_FAILURE``: Luigi's
``FAILURE`` only covers exceptions) says so too.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import luigi

from config.settings import load_settings
from monitoring import metrics, tasklog
from monitoring.logs import redact, run_id
from pipeline.core import runners
from pipeline.core.periods import new_token

log = logging.getLogger(__name__)

metrics.install()  # runs by outcome, durations, last success (pushed: monitoring.metrics)
runners.install()  # tasks run in warm worker processes, not a fork each (pipeline.core.runners)


def daily_retry_count() -> int:
    """Luigi's ``retry_count`` for the daily flows' tasks. Luigi counts the failures before it
    gives up, so it is the configured retries (``PIPELINE_DAILY_RETRIES``, default 2) plus one."""
    return load_settings().flows.daily_retries + 1


def today_utc() -> dt.date:
    """Today's date in UTC, whatever the machine's time zone: the flows' days are UTC days."""
    return dt.datetime.now(dt.UTC).date()


def yesterday() -> dt.date:
    """The default date of the daily flows: the last complete UTC day. Cron runs them on Moscow
    time (UTC+3) after 01:00, that is after 22:00 UTC, when yesterday (UTC) is complete; on a
    machine set to Moscow time ``date.today()`` would name a UTC day still in progress."""
    return today_utc() - dt.timedelta(days=1)


def task_timeout() -> int:
    """Luigi's ``worker_timeout`` of the flows' tasks (``PIPELINE_TASK_TIMEOUT_S``): a task
    running longer is killed by its worker, which then reports it (Luigi runs a task with a
    timeout in a process of its own, even with one worker)."""
    return load_settings().flows.task_timeout_s


class PipelineTask(luigi.Task):
    """A Luigi task that reports progress to the scheduler UI when a worker runs it, and whose
    failure sends a notification naming the task and the error.

    ``progress`` is safe outside a worker (a test calling ``run()`` directly, a rerun forced from
    a shell): Luigi only wires the status callbacks when its worker runs the task.
    """

    def progress(self, message: str, percent: float | None = None) -> None:
        if getattr(self, "_status_message_callback", None):
            self.set_status_message(message)
        if percent is not None and getattr(self, "_progress_percentage_callback", None):
            self.set_progress_percentage(int(percent))
        tasklog.progress(self, message, percent)  # on the console every few seconds


FORCE_HELP = (
    "Recompute the period even when it is complete: its rows are replaced, never doubled"
    " (a message already sent is not sent again: see --resend)."
)
FORCED_HELP = "Set by a wrapper's --force: this run's token (recompute until this run has)."
RESEND_HELP = "Send the period's messages again even if they were sent already."
RESENT_HELP = "Set by a wrapper's --resend: this run's token (send once more in this run)."


class PeriodTask(PipelineTask):
    """A task of a daily or weekly chain: ``forced`` carries a ``--force`` run's token down the
    chain (complete only once this run has recomputed it)."""

    forced = luigi.Parameter(default="", significant=False, description=FORCED_HELP)
    worker_timeout = task_timeout()


class PeriodWrapper(luigi.WrapperTask):
    """A daily or weekly flow's wrapper: ``--force`` recomputes the period even when complete.

    The token is made once per wrapper instance (Luigi keeps one instance per parameters in a
    process, and forked workers inherit it), recorded with what the forced run writes, so a
    forced task is complete exactly when this run has redone it."""

    force = luigi.BoolParameter(default=False, significant=False, description=FORCE_HELP)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.force_token = new_token() if self.force else ""
        self.resend_token = new_token() if getattr(self, "resend", False) else ""


def _params(task: luigi.Task) -> str:
    params = task.to_str_params(only_significant=True)
    text = ", ".join(f"{k}={v}" for k, v in params.items())
    return text if len(text) <= 120 else text[:119] + "…"


def failure_text(task: luigi.Task, error_type: str, message: str) -> str:
    """A failure message people can act on: what failed, the error's type and first line
    (redacted, at most 200 characters), where to look. Never the raw exception."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "")
    first = redact(first)
    if len(first) > 200:
        first = first[:199] + "…"
    flow = task.get_task_namespace() or "pipeline"
    logs = load_settings().paths.logs
    return (
        f"❌ {flow}: {task.get_task_family().rpartition('.')[2]} failed"
        f" ({_params(task) or 'no parameters'})\n"
        f"{error_type}: {first}\n"
        f"Where to look: the logs of run {run_id()} (Kibana labels.run_id, or {logs}/),"
        f" task {task.task_id}"
    )


def notify_failure(task: luigi.Task, error_type: str, message: str) -> None:
    """A failure message through the notification ledger (at-least-once; straight to the
    channel when the ledger's database is what failed). Never raises: a failing notification
    must not hide the failure it reports."""
    from pipeline.core import notifications

    text = failure_text(task, error_type, message)
    flow = task.get_task_namespace() or "pipeline"
    family = task.get_task_family().rpartition(".")[2]
    try:
        notifications.deliver_failure(
            (flow, _params(task), family, run_id()),
            notifications.Message(text, label="failure"),
        )
    except Exception as exc:
        log.error("failure notification not recorded (%s); sending it directly", type(exc).__name__)
        try:
            notifications.send_now(notifications.Message(text, label="failure"), "failure")
        except Exception as again:
            log.error("failure notification not sent: %s", type(again).__name__)


@PipelineTask.event_handler(luigi.Event.START)
def _settle_failures(task: PipelineTask) -> None:
    """A failure message whose process died between recording and sending it (at-least-once)
    is sent by the flow's next task to start. Never fails the task."""
    from pipeline.core import notifications

    try:
        notifications.deliver_unsettled(task.get_task_namespace() or "pipeline", kinds=("failure",))
    except Exception as exc:
        log.warning("pending failure messages not settled (%s)", type(exc).__name__)


@PipelineTask.event_handler(luigi.Event.FAILURE)
def _notify_failure(task: PipelineTask, exception: BaseException) -> None:
    """Every failed run of a flow's task (each retry included) says so; task parameters are
    dates, weeks and file batches, never personal data."""
    notify_failure(task, type(exception).__name__, str(exception))


@PipelineTask.event_handler(luigi.Event.TIMEOUT)
def _notify_timeout(task: PipelineTask, message: str) -> None:
    notify_failure(task, "Timeout", f"{message} (worker_timeout {task.worker_timeout} s)")


@PipelineTask.event_handler(luigi.Event.PROCESS_FAILURE)
def _notify_process_failure(task: PipelineTask, message: str) -> None:
    notify_failure(task, "ProcessDied", message)
