"""What every task of the project shares: progress in the scheduler UI, failure notifications."""

from __future__ import annotations

import datetime as dt

import luigi

from config.settings import load_settings
from monitoring import metrics

metrics.install()  # runs by outcome, durations, last success: pushed at the end of every task


def daily_retry_count() -> int:
    """Luigi's ``retry_count`` for the daily flows' tasks. Luigi counts the failures before it
    gives up, so it is the configured retries (``PIPELINE_DAILY_RETRIES``, default 2) plus one."""
    return load_settings().flows.daily_retries + 1


def yesterday() -> dt.date:
    """The default date of the daily flows (their cron runs after midnight)."""
    return dt.date.today() - dt.timedelta(days=1)


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


@PipelineTask.event_handler(luigi.Event.FAILURE)
def _notify_failure(task: PipelineTask, exception: BaseException) -> None:
    """Every failed run of a flow's task (each retry included) says so, with the error; task
    parameters are dates, weeks and file batches, never personal data."""
    from pipeline.systems.telegram import Notifier

    Notifier().send(
        f"❌ {task.task_id} failed: {type(exception).__name__}: {str(exception)[:1500]}",
        kind="failure",
    )
