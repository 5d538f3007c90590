"""What every task of the project shares: progress in the scheduler UI, failure notifications."""

from __future__ import annotations

import datetime as dt
import os

import luigi
import pandas as pd

from config.settings import load_settings
from monitoring import metrics

metrics.install()  # runs by outcome, durations, last success: pushed at the end of every task


# Luigi's retry_count is the number of failures before a task is disabled: two retries is 3.
TWO_RETRIES = 3


def yesterday() -> dt.date:
    """The default date of the daily flows (their cron runs after midnight)."""
    return dt.date.today() - dt.timedelta(days=1)


def day_target(flow: str, date: dt.date, name: str) -> luigi.LocalTarget:
    """A daily flow's work file: ``var/<flow>/<date>/<name>``."""
    return luigi.LocalTarget(str(load_settings().paths.runtime / flow / date.isoformat() / name))


def write_frame(frame: pd.DataFrame, target: luigi.LocalTarget) -> None:
    """A frame as CSV, atomically, readable by the owner only (work files may hold personal
    data)."""
    with target.temporary_path() as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            frame.to_csv(handle, index=False)


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
