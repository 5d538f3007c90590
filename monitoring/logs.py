"""JSON logs with Elastic Common Schema names, to stdout, a rotating file and Elasticsearch.

Every record is one JSON line: ``@timestamp``, ``log.level``, ``log.logger``, ``message``,
``service.name``, ``event.*`` (dataset, action, outcome, duration), ``error.type`` /
``error.message`` / ``error.stack_trace``, and the context that follows one thing through the
system — ``labels.flow``, ``labels.task_family``, ``labels.task_id``, ``labels.file_id``,
``labels.run_id`` — from ``context(...)`` or the record's ``extra``.

A redaction filter runs before any output: values of secret settings (passwords, tokens, API
keys from the environment or the ``.env`` file: ``config.settings.secret_values``),
``key=value`` / ``"key": "value"`` pairs whose key names a secret, bearer tokens, Telegram bot
tokens in URLs and e-mail addresses are replaced by ``[REDACTED]``, whatever the caller passes
(message, arguments, extra fields, tracebacks).

Elasticsearch, when ``PIPELINE_ELASTICSEARCH_URL`` is set: records go through a bounded queue to
a background thread that sends ``_bulk`` requests (``create`` with the record's own id into daily
indices ``pipeline-logs-YYYY.MM.DD``, an index template installed on first use). Elasticsearch
slow or down never blocks or fails a task: a full queue drops the record and counts it
(``dropped``, pushed as ``pipeline_log_records_dropped_total``), failed sends are retried with the
same ids (a retry never duplicates: ``create`` of an existing id is a 409, counted as sent), and
shipping resumes when the server returns.

Processes set it up with ``setup_logging(service)``; ``luigi`` commands get it from
``config/logging.ini`` (``[core] logging_conf_file`` in luigi.cfg).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import json
import logging
import logging.handlers
import queue
import re
import sys
import threading
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
_PAIR = re.compile(
    rf"(?i)(\"?(?:[\w.-]*(?:{SECRET_WORDS})[\w.-]*)\"?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_BOT = re.compile(r"/bot\d+:[A-Za-z0-9_-]+")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
CONTEXT_KEYS = ("flow", "task_family", "task_id", "file_id", "run_id")
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
        text = text.replace(secret, REDACTED)
    text = _BOT.sub(f"/bot{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _PAIR.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    return _EMAIL.sub(REDACTED, text)


class RedactFilter(logging.Filter):
    """Renders the message and scrubs it, its traceback and every extra string field."""

    def filter(self, record: logging.LogRecord) -> bool:
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


# -- Elasticsearch ----------------------------------------------------------------------------
INDEX_TEMPLATE: dict[str, Any] = {
    "index_patterns": ["pipeline-logs-*"],
    "template": {
        "settings": {"number_of_shards": 1},
        "mappings": {
            "dynamic_templates": [
                {"labels": {"path_match": "labels.*", "mapping": {"type": "keyword"}}}
            ],
            "properties": {
                "@timestamp": {"type": "date"},
                "log.level": {"type": "keyword"},
                "log.logger": {"type": "keyword"},
                "message": {"type": "text"},
                "service.name": {"type": "keyword"},
                "event.dataset": {"type": "keyword"},
                "event.action": {"type": "keyword"},
                "event.outcome": {"type": "keyword"},
                "event.duration": {"type": "long"},
                "error.type": {"type": "keyword"},
                "error.message": {"type": "text"},
                "error.stack_trace": {"type": "text", "index": False},
            },
        },
    },
}


class ElasticsearchShipper:
    """Bounded queue + background thread sending bulk requests with elasticsearch-py."""

    def __init__(
        self,
        url: str,
        api_key: str = "",
        capacity: int = 10_000,
        batch: int = 500,
        flush_s: float = 1.0,
        timeout_s: float = 5.0,
        retry_s: float = 2.0,
    ) -> None:
        from elasticsearch import Elasticsearch

        self.client = Elasticsearch(
            url, api_key=api_key or None, request_timeout=timeout_s, max_retries=0
        )
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=capacity)
        self.batch, self.flush_s, self.retry_s = batch, flush_s, retry_s
        self.dropped = 0  # records the full queue refused
        self.failed = 0  # records Elasticsearch rejected for good (a mapping error)
        self.sent = 0
        self.template_ready = False
        self._pending: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="es-shipper", daemon=True)
        self._thread.start()

    def put(self, doc: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(doc)
        except queue.Full:
            self.dropped += 1

    def _loop(self) -> None:
        while not self._stop.is_set() or not self.queue.empty() or self._pending:
            self._fill()
            if self._pending and not self._send():
                if self._stop.is_set():
                    break  # shutting down and the server is away: give up, counted as dropped
                self._stop.wait(self.retry_s)

    def _fill(self) -> None:
        deadline = time.monotonic() + self.flush_s
        while len(self._pending) < self.batch:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                self._pending.append(self.queue.get(timeout=min(timeout, 0.2)))
            except queue.Empty:
                if self._stop.is_set():
                    break

    def _send(self) -> bool:
        """Send the pending batch; keep what must be retried. True when nothing is left."""
        from elasticsearch import ApiError, TransportError

        try:
            if not self.template_ready:
                self.client.indices.put_index_template(
                    name="pipeline-logs",
                    index_patterns=["pipeline-logs-*"],
                    template=INDEX_TEMPLATE["template"],
                )
                self.template_ready = True
            operations: list[dict[str, Any]] = []
            for doc in self._pending:
                day = doc["@timestamp"][:10].replace("-", ".")
                operations.append({"create": {"_index": f"pipeline-logs-{day}", "_id": doc["_id"]}})
                operations.append({k: v for k, v in doc.items() if k != "_id"})
            result = self.client.bulk(operations=operations)
        except (ApiError, TransportError, OSError):
            return False
        retry = []
        for doc, item in zip(self._pending, result["items"], strict=True):
            status = item["create"]["status"]
            if status in (200, 201, 409):  # 409: a retry of a record that did arrive
                self.sent += 1
            elif status == 429 or status >= 500:
                retry.append(doc)
            else:
                self.failed += 1
        self._pending = retry
        return not retry

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.dropped += self.queue.qsize() + len(self._pending)


class ElasticsearchHandler(logging.Handler):
    """A logging handler that never blocks: it formats and hands the record to the shipper."""

    def __init__(
        self, url: str = "", api_key: str = "", service: str = "pipeline", **kwargs: Any
    ) -> None:
        super().__init__()
        self.service = service
        self.shipper = ElasticsearchShipper(url, api_key, **kwargs)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            doc = ecs_document(record, self.service)
            doc["_id"] = uuid.uuid4().hex
            self.shipper.put(json.loads(json.dumps(doc, default=str)))
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self.shipper.close()
        super().close()


# -- setup ------------------------------------------------------------------------------------
class PipelineHandler(logging.Handler):
    """Everything above behind one handler: redaction, then JSON lines to stdout and to
    ``var/logs/<service>.log`` (rotated at 20 MB, 5 kept), and to Elasticsearch when
    ``PIPELINE_ELASTICSEARCH_URL`` is set. ``config/logging.ini`` names it for ``luigi``."""

    def __init__(self, service: str = "pipeline", log_dir: str = "") -> None:
        super().__init__()
        settings = config.load_settings()
        folder = Path(log_dir) if log_dir else settings.paths.logs
        folder.mkdir(parents=True, exist_ok=True)
        formatter = EcsFormatter(service=service)
        self.outputs: list[logging.Handler] = [
            logging.StreamHandler(sys.stdout),
            logging.handlers.RotatingFileHandler(
                folder / f"{service}.log",
                maxBytes=20 * 1024 * 1024,
                backupCount=5,
                encoding="utf-8",
            ),
        ]
        for output in self.outputs:
            output.setFormatter(formatter)
        self.elasticsearch: ElasticsearchHandler | None = None
        if settings.monitoring.elasticsearch_url:
            self.elasticsearch = ElasticsearchHandler(
                settings.monitoring.elasticsearch_url,
                settings.monitoring.elasticsearch_api_key,
                service=service,
                timeout_s=settings.monitoring.elasticsearch_timeout_s,
            )
            self.outputs.append(self.elasticsearch)
        self.addFilter(RedactFilter())
        _handlers.append(self)

    def emit(self, record: logging.LogRecord) -> None:
        for output in self.outputs:
            if record.levelno >= output.level:
                output.handle(record)

    def close(self) -> None:
        for output in self.outputs:
            output.close()
        if self in _handlers:
            _handlers.remove(self)
        super().close()


_handlers: list[PipelineHandler] = []


def dropped_records() -> int:
    """Records the Elasticsearch queues of this process have dropped so far."""
    return sum(h.elasticsearch.shipper.dropped for h in _handlers if h.elasticsearch)


def setup_logging(service: str, level: int = logging.INFO) -> PipelineHandler:
    """The project's logging for a process of its own (the watcher, the cron runner, a command).
    Calling it again replaces the handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, PipelineHandler):
            root.removeHandler(handler)
            handler.close()
    handler = PipelineHandler(service)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
