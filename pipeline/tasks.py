"""What every task of the project shares."""

from __future__ import annotations

import luigi


class PipelineTask(luigi.Task):
    """A Luigi task that reports progress to the scheduler UI when a worker runs it.

    ``progress`` is safe outside a worker (a test calling ``run()`` directly, a rerun forced from
    a shell): Luigi only wires the status callbacks when its worker runs the task.
    """

    def progress(self, message: str, percent: float | None = None) -> None:
        if getattr(self, "_status_message_callback", None):
            self.set_status_message(message)
        if percent is not None and getattr(self, "_progress_percentage_callback", None):
            self.set_progress_percentage(int(percent))
