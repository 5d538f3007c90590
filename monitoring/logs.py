"""Logs: concise lines on the console for people, JSON (ECS) lines in files for machines.

Every record is redacted first, then written twice:

- **the log file** ``var/logs/<service>.log``, always: one JSON line per record with Elastic Common
  Schema names — ``@timestamp``, ``log.level``, ``log.logger``, ``message``, ``service.name``,
  ``event.id`` (the record's own id), ``event.*`` (action, outcome, duration), ``error.type`` /
  ``error.message`` / ``error.stack_trace`` — and the context that follows one thing through the
  system: ``labels.flow``, ``labels.task_family``, ``labels.task_id``, ``labels.file_id``,
  ``labels.run_id``. Several processes append to the same file (the worker's task processes
  with ``--workers 2``): each record is one ``write`` to a file opened for appending, and the
  file is rotated at 20 MB (5 kept) under a lock, by whichever process finds it full first.
- **the console** (stdout): with ``PIPELINE_LOG_FORMAT=text`` (the default) one concise line per
  task start and finish (flow, task, key parameters, rows, duration; ``monitoring.tasklog``),
  progress of long tasks, and every warning and error; Luigi's own scheduler chatter below
  WARNING is left out (its execution summary is kept). Services (the cron runner, the watcher)
  show their INFO records too. ``PIPELINE_LOG_FORMAT=json`` writes the JSON lines instead, for
  containers.

Elasticsearch gets the files, never the processes: ``monitoring.shipper`` (local stack) or Filebeat
(compose) reads them and sends each record with its ``event.id`` as the document id, so a record
is stored once however often it is sent, nothing is lost when a process exits a moment after
logging or was forked, and a process never waits for Elasticsearch.

A redaction filter runs before any output: values of secret settings (passwords, tokens, API
keys from the environment or the ``.env`` file: ``config.settings.secret_values``),
``key=value`` / ``"key": "value"`` pairs whose key names a secret, bearer tokens, Telegram bot
tokens in URLs and e-mail addresses are replaced by ``[REDACTED]``, whatever the caller passes
(message, arguments, extra fields, tracebacks).

Processes set it up with ``setup_logging(service)``; ``luigi`` commands get it from
``config/logging.ini`` (``[core] logging_conf_file`` in luigi.cfg).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import fcntl
import functools
import logging
import os
import re
import sys
import time
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from config import settings as config

REDACTED = "[REDACTED]"
SECRET_WORDS = r"password|passwd|token|secret|api[_-]?key|authorization"
# A key naming a secret, from the start of a word (so a long word is not scanned from every
# one of its letters), then its value.
_PAIR = re.compile(
    rf"(?i)(?<![\w.-])(\"?(?:[\w.-]*?(?:{SECRET_WORDS})[\w.-]*)\"?\s*[:=]\s*)"
    r"(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
)
_SECRET_WORD = re.compile(rf"(?i){SECRET_WORDS}")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_BOT = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
CONTEXT_KEYS = ("flow", "task_family", "task_id", "file_id", "run_id")
# Loggers whose INFO records are chatter: Luigi's scheduler and worker (our own task lines say
# the same in one line each), and the HTTP clients' one line per request.
CHATTY = ("luigi", "luigi-interface", "elastic_transport", "elasticsearch", "urllib3")
LUIGI_SUMMARY = "===== Luigi Execution Summary ====="
_WORKER_FAILED = re.compile(r"\[pid \d+\] Worker .* failed ")
MAX_BYTES = 20 * 1024 * 1024
BACKUPS = 5
_context: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar(
    "log_context", default=()
)


@functools.cache
def run_id() -> str:
    """One id for every record of a run: ``PIPELINE_RUN_ID`` when the caller gives one, else made
    once per process (Luigi's forked workers inherit it, so one command has one id)."""
    return config.load_settings().monitoring.run_id or uuid.uuid4().hex[:12]


def bind(**values: Any) -> None:
    """Replace the context of this thread's records from here on (Luigi's START: one task at a
    time per worker thread)."""
    _context.set(tuple((k, str(v)) for k, v in values.items() if v is not None))


@contextlib.contextmanager
def context(**values: Any) -> Iterator[None]:
    """Context added to every record logged inside the block (flow, task_family, file_id, ...)."""
    merged = {**dict(_context.get()), **{k: str(v) for k, v in values.items() if v is not None}}
    token = _context.set(tuple(merged.items()))
    try:
        yield
    finally:
        _context.reset(token)


def secret_values(env: dict[str, str] | None = None) -> list[str]:
    """The secret values to scrub, longest first (``config.settings.secret_values``)."""
    return config.secret_values(env)


def redact(text: str, secrets: list[str] | None = None) -> str:
    for secret in secret_values() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    # Each pattern only where it can match: most records have none of them.
    if "/bot" in text:
        text = _BOT.sub(f"/bot{REDACTED}", text)
    if _SECRET_WORD.search(text) or "earer" in text or "asic" in text:
        text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        text = _PAIR.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    if "@" in text:
        text = _EMAIL.sub(REDACTED, text)
    return text


class RedactFilter(logging.Filter):
    """Renders the message and scrubs it, its traceback and every extra string field; gives the
    record its id (``event.id``, the same in every output)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        secrets = secret_values()
        try:
            message = record.getMessage()
        except Exception:  # a broken format string still gets logged, scrubbed
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message, secrets), None
        if record.exc_info:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)), secrets)
            record.exc_info = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value, secrets))
        record._redacted = True
        record._event_id = uuid.uuid4().hex
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class EcsFormatter(JsonFormatter):
    """One JSON object per record with ECS field names."""

    def __init__(self, service: str = "pipeline", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service

    def add_fields(
        self, log: dict[str, Any], record: logging.LogRecord, message: dict[str, Any]
    ) -> None:
        log.update(ecs_document(record, self.service))


def ecs_document(record: logging.LogRecord, service: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
            timespec="milliseconds"
        ),
        "log.level": record.levelname.lower(),
        "log.logger": record.name,
        "message": record.getMessage() if record.args else str(record.msg),
        "service.name": service,
        "event.id": getattr(record, "_event_id", None) or uuid.uuid4().hex,
        "process.pid": record.process,
        "labels.run_id": run_id(),
    }
    labels: dict[str, Any] = dict(_context.get())
    for key, value in vars(record).items():
        if key in _STANDARD or key.startswith("_"):
            continue
        if key in CONTEXT_KEYS:
            labels[key] = value
        elif key.startswith("event_"):
            doc[f"event.{key[6:]}"] = value
        elif key.startswith(("event.", "error.", "labels.")):  # an ECS name given as such
            doc[key] = value
        else:
            doc[f"labels.{key}"] = value
    for key, value in labels.items():
        doc[f"labels.{key}"] = value
    if record.exc_text:
        first = record.exc_text.strip().splitlines()[-1]
        kind, _, text = first.partition(": ")
        doc.update(
            {"error.type": kind, "error.message": text, "error.stack_trace": record.exc_text}
        )
    return doc


# -- the console ------------------------------------------------------------------------------
TAGS = {
    "task.start": "start",
    "task.finish": "done",
    "task.fail": "FAILED",
    "task.progress": "...",
    "task.skip": "skip",
}


class ConsoleFormatter(logging.Formatter):
    """One short line per record: the time, a tag (start, done, FAILED, WARN, ERROR) and the
    message; an exception adds its last line (the traceback is in the log file)."""

    def format(self, record: logging.LogRecord) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(record.created))
        message = record.getMessage()
        action = getattr(record, "event_action", "")
        if action in TAGS:
            tag = TAGS[action]
        elif record.levelno >= logging.ERROR:
            tag = "ERROR"
        elif record.levelno >= logging.WARNING:
            tag = "WARN"
        else:
            tag = ""
        if message.lstrip("\n").startswith(LUIGI_SUMMARY):
            return "\n" + message.strip("\n")
        line = f"{when} {tag:<6} {message}"
        if record.exc_text:
            line += f" ({record.exc_text.strip().splitlines()[-1]})"
        return line


class ConsoleFilter(logging.Filter):
    """What people see: task lines, warnings and errors, Luigi's summary, and (``info=True``,
    the services) every INFO record but the chatty loggers'. A program that reports its own
    progress (the demo) turns the task lines and the summary off."""

    def __init__(self, info: bool = False, summary: bool = True, tasks: bool = True) -> None:
        super().__init__()
        self.info, self.summary, self.tasks = info, summary, tasks

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            # Luigi's own "Worker ... failed <task>": the task's FAILED line says it already.
            return not (record.name == "luigi-interface" and _WORKER_FAILED.match(str(record.msg)))
        if getattr(record, "event_action", "") in TAGS:
            return self.tasks
        if _is_summary(record):
            return self.summary
        return self.info and not _chatty(record)


class FileFilter(logging.Filter):
    """The files keep everything at INFO but Luigi's and the HTTP clients' chatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not _chatty(record) or _is_summary(record)


def _chatty(record: logging.LogRecord) -> bool:
    return record.name.split(".")[0] in CHATTY


def _is_summary(record: logging.LogRecord) -> bool:
    return isinstance(record.msg, str) and record.msg.lstrip("\n").startswith(LUIGI_SUMMARY)


# -- the file ---------------------------------------------------------------------------------
class JsonLinesFile(logging.Handler):
    """Appends one line per record to ``path``; safe for several processes at once.

    Each line is one ``write`` on a descriptor opened with ``O_APPEND``, so lines of different
    processes (Luigi's forked workers included) never interleave. At ``max_bytes`` the file is
    rotated (``.1`` .. ``.<backups>``) under an exclusive lock, by the first process to notice;
    the others see a new file at the path and reopen it. Readers that follow the files by inode
    (the shipper, Filebeat) finish a rotated file before its successor."""

    def __init__(self, path: Path, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        super().__init__()
        self.path = path
        self.lock_path = path.parent / f".{path.name}.lock"
        self.max_bytes, self.backups = max_bytes, backups
        self._fd: int | None = None
        self._inode = 0

    def _open(self) -> int:
        if self._fd is not None:
            os.close(self._fd)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o600)
        self._inode = os.fstat(self._fd).st_ino
        return self._fd

    def _current(self) -> int:
        """The descriptor of the file now at the path (another process may have rotated it)."""
        try:
            inode = os.stat(self.path).st_ino
        except FileNotFoundError:
            inode = -1
        if self._fd is None or inode != self._inode:
            return self._open()
        return self._fd

    def _rotate(self) -> int:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                info = os.stat(self.path)
            except FileNotFoundError:
                return self._open()
            if info.st_ino == self._inode and info.st_size >= self.max_bytes:
                for n in range(self.backups - 1, 0, -1):
                    older = self.path.with_name(f"{self.path.name}.{n}")
                    if older.exists():
                        older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
                self.path.replace(self.path.with_name(f"{self.path.name}.1"))
            return self._open()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
            fd = self._current()
            if os.fstat(fd).st_size + len(data) > self.max_bytes:
                fd = self._rotate()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._fd is not None:
                os.close(self._fd)
        self._fd = None
        super().close()


# -- setup ------------------------------------------------------------------------------------
class PipelineHandler(logging.Handler):
    """Everything above behind one handler: redaction, then the JSON file
    ``var/logs/<service>.log`` and the console (text or JSON, ``PIPELINE_LOG_FORMAT``).
    ``config/logging.ini`` names it for ``luigi`` commands; ``console_info`` shows INFO records
    on the console (services), ``summary`` Luigi's execution summary."""

    def __init__(
        self,
        service: str = "pipeline",
        log_dir: str = "",
        console_info: bool = False,
        summary: bool = True,
        tasks: bool = True,
    ) -> None:
        super().__init__()
        settings = config.load_settings()
        folder = Path(log_dir) if log_dir else settings.paths.logs
        folder.mkdir(parents=True, exist_ok=True)
        ecs = EcsFormatter(service=service)
        self.file = JsonLinesFile(folder / f"{service}.log")
        self.file.setFormatter(ecs)
        self.file.addFilter(FileFilter())
        self.console = logging.StreamHandler(sys.stdout)
        if settings.monitoring.log_format == "json":
            self.console.setFormatter(ecs)
            self.console.addFilter(FileFilter())
        else:
            self.console.setFormatter(ConsoleFormatter())
            self.console.addFilter(ConsoleFilter(info=console_info, summary=summary, tasks=tasks))
        self.outputs: list[logging.Handler] = [self.file, self.console]
        self.addFilter(RedactFilter())
        _quiet_http_clients()

    def emit(self, record: logging.LogRecord) -> None:
        for output in self.outputs:
            if record.levelno >= output.level:
                output.handle(record)

    def close(self) -> None:
        for output in self.outputs:
            output.close()
        super().close()


def _quiet_http_clients() -> None:
    """The HTTP clients log one INFO line per request (elasticsearch-py's transport among them):
    a process never logs, and so never ships, its own transport chatter."""
    for name in ("elastic_transport", "elasticsearch", "urllib3"):
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def setup_logging(
    service: str,
    level: int = logging.INFO,
    console_info: bool = True,
    summary: bool = True,
    tasks: bool = True,
) -> PipelineHandler:
    """The project's logging for a process of its own (the watcher, the cron runner, the demo).
    Calling it again replaces the handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, PipelineHandler):
            root.removeHandler(handler)
            handler.close()
    handler = PipelineHandler(service, console_info=console_info, summary=summary, tasks=tasks)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
