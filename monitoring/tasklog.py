"""One log record per task start and finish, which the console shows as one line each.

    04:11:42 start  sales.SalesWeekly week=2024-01-15
    04:11:44 done   sales.SalesWeekly week=2024-01-15  50 rows  2.1s
    04:11:44 FAILED sales.SalesAggregates week=2024-01-15  ValueError: no rows  0.3s

Luigi's events fire in the process that runs the task (a task process with ``--workers 2``), so the
rows a task records (``monitoring.metrics.record_rows``) and its start time are kept per process
and reset when a task starts. Progress of a long task (``PipelineTask.progress``) is logged at
most every ``PROGRESS_EVERY_S`` seconds. In the JSON files the same records carry
``event.action`` (task.start, task.finish, task.fail, task.progress), ``event.outcome``,
``event.duration`` (nanoseconds, as ECS has it) and ``labels.rows_*``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import luigi

log = logging.getLogger("pipeline.tasks")
PROGRESS_EVERY_S = 10.0
MAX_VALUE = 40
_EMPTY = ("", "[]", "()", "{}", "None")
_current: dict[str, Any] = {"task_id": None, "started": None, "said": 0.0, "rows": {}}


def describe(task: luigi.Task) -> str:
    """``flow.Task key=value ...``: the significant parameters, long values shortened."""
    parts = []
    for key, value in task.to_str_params(only_significant=True, only_public=True).items():
        if value in _EMPTY:
            continue
        if value.startswith(("[", "(")):
            try:
                items = json.loads(value.replace("(", "[").replace(")", "]"))
            except ValueError:
                items = None
            if isinstance(items, list) and len(items) > 2:
                value = f"[{len(items)} items]"
        if len(value) > MAX_VALUE:
            value = value[: MAX_VALUE - 3] + "..."
        parts.append(f"{key}={value}")
    return " ".join([task.get_task_family(), *parts])


def add_rows(read: int = 0, written: int = 0, rejected: int = 0) -> None:
    """Rows the running task read, wrote and rejected (shown on its finish line)."""
    rows = _current["rows"]
    for kind, value in (("read", read), ("written", written), ("rejected", rejected)):
        rows[kind] = rows.get(kind, 0) + int(value)


def _context(task: luigi.Task, action: str, **extra: Any) -> dict[str, Any]:
    return {
        "event_action": action,
        "flow": task.get_task_namespace() or "other",
        "task_family": task.get_task_family(),
        "task_id": task.task_id,
        **extra,
    }


def _elapsed(task: luigi.Task) -> float | None:
    if _current["task_id"] != task.task_id or _current["started"] is None:
        return None
    return float(time.monotonic() - _current["started"])


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"


def rows_text(rows: dict[str, int]) -> str:
    if rows.get("written"):
        text = f"{rows['written']:,} rows"
    elif rows.get("read"):
        text = f"{rows['read']:,} rows read"
    else:
        return ""
    if rows.get("rejected"):
        text += f" ({rows['rejected']:,} rejected)"
    return text


def _line(*parts: str) -> str:
    return "  ".join(p for p in parts if p)


def on_start(task: luigi.Task) -> None:
    _current.update(task_id=task.task_id, started=time.monotonic(), said=time.monotonic(), rows={})
    log.info(describe(task), extra=_context(task, "task.start"))


def on_success(task: luigi.Task) -> None:
    seconds = _elapsed(task)
    rows = dict(_current["rows"]) if _current["task_id"] == task.task_id else {}
    extra = {f"rows_{kind}": value for kind, value in rows.items() if value}
    if seconds is not None:
        extra["event_duration"] = int(seconds * 1e9)
    log.info(
        _line(describe(task), rows_text(rows), duration_text(seconds)),
        extra=_context(task, "task.finish", event_outcome="success", **extra),
    )


def on_failure(task: luigi.Task, error: Any, *args: Any) -> None:
    """FAILURE and BROKEN_TASK carry the exception, TIMEOUT and PROCESS_FAILURE a message."""
    seconds = _elapsed(task)
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    text = " ".join(str(error).split())
    if len(text) > 200:
        text = text[:197] + "..."
    extra: dict[str, Any] = {"event_outcome": "failure"}
    if seconds is not None:
        extra["event_duration"] = int(seconds * 1e9)
    log.error(
        _line(describe(task), text, duration_text(seconds)),
        extra=_context(task, "task.fail", **extra),
    )


def progress(task: luigi.Task, message: str, percent: float | None = None) -> None:
    """A long task's progress, at most every ``PROGRESS_EVERY_S`` seconds."""
    now = time.monotonic()
    if now - _current["said"] < PROGRESS_EVERY_S:
        return
    _current["said"] = now
    done = f"{percent:.0f}%" if percent is not None else ""
    log.info(
        _line(describe(task), done, message, duration_text(_elapsed(task))),
        extra=_context(task, "task.progress"),
    )


def install() -> None:
    """Register the handlers on every task (once)."""
    if getattr(install, "done", False):
        return
    luigi.Task.event_handler(luigi.Event.START)(on_start)
    luigi.Task.event_handler(luigi.Event.SUCCESS)(on_success)
    for event in (
        luigi.Event.FAILURE,
        luigi.Event.BROKEN_TASK,
        luigi.Event.TIMEOUT,
        luigi.Event.PROCESS_FAILURE,
    ):
        luigi.Task.event_handler(event)(on_failure)
    install.done = True  # type: ignore[attr-defined]
