"""The log shipper: the JSON log files (``var/logs/``) into an Elasticsearch data stream.

Processes only ever write their log files (``monitoring.logs``); this reads them, as Filebeat does
in the compose stack, and sends every record into the data stream
``logs-pipeline-<environment>`` as ``create`` with the record's ``event.id`` as the document id:

- **at least once**: a file's position is saved (``<logs>/.shipper/state.json``) only after
  Elasticsearch acknowledged the records before it, so a shipper that stops or crashes sends them
  again when it starts;
- **never twice in Elasticsearch**: a record sent again is a ``create`` of an id already stored,
  which Elasticsearch refuses (409) and the shipper counts as delivered;
- **whatever the writers do**: a record is in its file before the process that logged it moves
  on, so a process that exits a moment later, or a worker Luigi forked, loses nothing; files are
  followed by inode, so a rotated file is finished under its new name (and even once deleted).

Elasticsearch slow or down: the batch is retried every ``retry_s`` until it is back. A line that is
not JSON, or a record Elasticsearch refuses for good (a mapping error), is dropped and counted per
service; the counts are pushed to the Pushgateway (``pipeline_log_records_dropped_total``, alert
LogRecordsDropped) with the records shipped and the bytes still to ship (``job="log_shipper"``).
The shipper logs only changes (Elasticsearch gone, back, records dropped), never one line per
request, so what it ships of its own log stays small.

On first contact it installs the lifecycle policy (``monitoring/elasticsearch/ilm-policy.json``:
deleted after 30 days) and the index template of the data stream
(``monitoring/elasticsearch/index-template.json``); compose's ``es-setup`` installs the same
files for Filebeat. An API key without that right (403) ships anyway.

    python -m monitoring.shipper           # run (the local stack starts it when
                                           #   PIPELINE_ELASTICSEARCH_URL is set)
    python -m monitoring.shipper --once    # ship what the files hold now, then exit
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO

from config.settings import load_settings
from pipeline.core.files import atomic_write

log = logging.getLogger("monitoring.shipper")
SETUP = Path(__file__).resolve().parent / "elasticsearch"
POLICY = "pipeline-logs"
TEMPLATE = "pipeline-logs"
INDEX_TEMPLATE: dict[str, Any] = json.loads((SETUP / "index-template.json").read_text())
LIFECYCLE_POLICY: dict[str, Any] = json.loads((SETUP / "ilm-policy.json").read_text())
JOB = "log_shipper"


def data_stream(environment: str) -> str:
    """``logs-pipeline-<environment>``: Elastic's naming (type-dataset-namespace)."""
    return f"logs-pipeline-{environment}"


def log_files(folder: Path) -> list[Path]:
    """The JSON log files, oldest first: rotated copies (``x.log.5`` .. ``x.log.1``) before the
    live file."""

    def age(path: Path) -> tuple[float, int]:
        suffix = path.name.rpartition(".")[2]
        return (path.stat().st_mtime, -int(suffix) if suffix.isdigit() else 0)

    found = [*folder.glob("*.log"), *folder.glob("*.log.[0-9]*")]
    existing = []
    for path in found:
        with contextlib.suppress(FileNotFoundError):
            existing.append((age(path), path))
    return [path for _, path in sorted(existing)]


@dataclass
class Tracked:
    """A file being read: its identity, where it is now, the position acknowledged so far."""

    key: str
    path: Path
    offset: int
    handle: BinaryIO | None = None


@dataclass
class Counts:
    shipped: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def add(self, table: dict[str, int], service: str, n: int = 1) -> None:
        table[service] = table.get(service, 0) + n


class Shipper:
    """Reads the folder's log files and sends their records; ``step()`` does one batch."""

    def __init__(
        self,
        folder: Path,
        url: str,
        api_key: str = "",
        stream: str = "logs-pipeline-local",
        timeout_s: float = 5.0,
        batch: int = 500,
        batch_bytes: int = 5 * 1024 * 1024,
        retry_s: float = 2.0,
    ) -> None:
        from elasticsearch import Elasticsearch

        self.folder = folder
        self.state_path = folder / ".shipper" / "state.json"
        self.client = Elasticsearch(
            url, api_key=api_key or None, request_timeout=timeout_s, max_retries=0
        )
        self.stream, self.batch, self.batch_bytes = stream, batch, batch_bytes
        self.retry_s = retry_s
        self.files: dict[str, Tracked] = {}
        self.counts = Counts()
        self.setup_done = False
        self.reachable: bool | None = None
        self._pending: tuple[Tracked, list[tuple[str, str, dict[str, Any]]], int] | None = None
        self._load()

    # -- state --------------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            state = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return
        for key, entry in state.get("files", {}).items():
            self.files[key] = Tracked(key, Path(entry["path"]), int(entry["offset"]))
        self.counts = Counts(state.get("shipped", {}), state.get("dropped", {}))

    def save(self) -> None:
        state = {
            "files": {k: {"path": str(t.path), "offset": t.offset} for k, t in self.files.items()},
            "shipped": self.counts.shipped,
            "dropped": self.counts.dropped,
        }
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.state_path, json.dumps(state, indent=1, sort_keys=True))

    # -- files ----------------------------------------------------------------------------------
    def scan(self) -> list[Tracked]:
        """The files to read now, oldest first; a file seen before keeps its position (under a new
        name if it was rotated), a deleted one is read to its end from the open handle."""
        seen: list[Tracked] = []
        for path in log_files(self.folder):
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            key = f"{info.st_dev}:{info.st_ino}"
            tracked = self.files.get(key)
            if tracked is None:
                tracked = self.files[key] = Tracked(key, path, 0)
            elif info.st_size < tracked.offset:  # a new file on a reused inode
                self._close(tracked)
                tracked.offset = 0
            tracked.path = path
            seen.append(tracked)
        listed = {t.key for t in seen}
        for tracked in list(self.files.values()):
            if tracked.key in listed:
                continue
            if tracked.handle is None or self.size(tracked) <= tracked.offset:
                self._close(tracked)  # gone and finished: forget it
                del self.files[tracked.key]
            else:
                seen.insert(0, tracked)  # deleted while we still had it open: finish it
        return seen

    def size(self, tracked: Tracked) -> int:
        if tracked.handle is not None:
            return os.fstat(tracked.handle.fileno()).st_size
        try:
            return tracked.path.stat().st_size
        except FileNotFoundError:
            return 0

    def backlog_bytes(self) -> int:
        return sum(max(0, self.size(t) - t.offset) for t in self.scan())

    def _open(self, tracked: Tracked) -> BinaryIO | None:
        if tracked.handle is None:
            try:
                tracked.handle = open(tracked.path, "rb")  # noqa: SIM115 (kept open across reads)
            except FileNotFoundError:
                return None
        return tracked.handle

    def _close(self, tracked: Tracked) -> None:
        if tracked.handle is not None:
            tracked.handle.close()
            tracked.handle = None

    def read_batch(self, tracked: Tracked) -> tuple[list[tuple[str, str, dict[str, Any]]], int]:
        """Complete lines from the acknowledged position: (id, service, document) each, and the
        position after them. A line still being written (no newline yet) waits."""
        handle = self._open(tracked)
        if handle is None:
            return [], tracked.offset
        handle.seek(tracked.offset)
        records: list[tuple[str, str, dict[str, Any]]] = []
        position, read = tracked.offset, 0
        fallback = tracked.path.name.split(".")[0]
        while len(records) < self.batch and read < self.batch_bytes:
            line = handle.readline()
            if not line.endswith(b"\n"):
                break
            start, position, read = position, position + len(line), read + len(line)
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                if not isinstance(doc, dict):
                    raise ValueError("not an object")
            except ValueError:
                self.counts.add(self.counts.dropped, fallback)
                log.warning(
                    "log line %s:%d is not JSON: dropped",
                    tracked.path.name,
                    start,
                    extra={"event_action": "logs.dropped"},
                )
                continue
            # A record without its own id gets one from where it is: the same on every re-read.
            doc_id = (
                str(doc.pop("event.id", ""))
                or hashlib.sha1(f"{tracked.key}:{start}".encode() + line).hexdigest()
            )
            doc.setdefault("@timestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            records.append((doc_id, str(doc.get("service.name") or fallback), doc))
        return records, position

    # -- Elasticsearch --------------------------------------------------------------------------
    def setup(self) -> None:
        """The lifecycle policy and the data stream's template, once (403: someone else's job)."""
        from elasticsearch import ApiError

        try:
            self.client.ilm.put_lifecycle(name=POLICY, body=LIFECYCLE_POLICY)
            self.client.indices.put_index_template(name=TEMPLATE, body=INDEX_TEMPLATE)
        except ApiError as exc:
            if exc.meta.status not in (401, 403):
                raise
            log.warning(
                "not allowed to install the log lifecycle policy and template (HTTP %d); "
                "shipping into the existing data stream",
                exc.meta.status,
            )
        self.setup_done = True

    def send(
        self, records: list[tuple[str, str, dict[str, Any]]]
    ) -> list[tuple[str, str, dict[str, Any]]] | None:
        """Send a batch. None: Elasticsearch did not answer (all to send again); else the
        records to send again (429, 5xx per item); the rest is stored or refused for good."""
        from elasticsearch import ApiError, TransportError

        try:
            if not self.setup_done:
                self.setup()
            operations: list[dict[str, Any]] = []
            for doc_id, _, doc in records:
                operations.append({"create": {"_index": self.stream, "_id": doc_id}})
                operations.append(doc)
            result = self.client.bulk(operations=operations)
        except (ApiError, TransportError, OSError) as exc:
            self._reachable(False, exc)
            return None
        self._reachable(True)
        retry, refused = [], []
        for record, item in zip(records, result["items"], strict=True):
            outcome = item.get("create", {})
            status = int(outcome.get("status", 500))
            if status in (200, 201):
                self.counts.add(self.counts.shipped, record[1])
            elif status == 409:  # stored by an earlier attempt
                continue
            elif status == 429 or status >= 500:
                retry.append(record)
            else:
                self.counts.add(self.counts.dropped, record[1])
                refused.append(str(outcome.get("error", {}).get("reason", status))[:200])
        if refused:
            log.warning(
                "Elasticsearch refused %d log record(s): dropped (first: %s)",
                len(refused),
                refused[0],
                extra={"event_action": "logs.dropped"},
            )
        return retry

    def _reachable(self, ok: bool, error: BaseException | None = None) -> None:
        if ok and self.reachable is False:
            log.info("Elasticsearch is back: shipping resumes", extra={"event_action": "logs.up"})
        elif not ok and self.reachable is not False:
            log.warning(
                "Elasticsearch unreachable (%s): logs stay in %s and are shipped when it is back",
                type(error).__name__,
                self.folder,
                extra={"event_action": "logs.down"},
            )
        self.reachable = ok

    # -- the loop -------------------------------------------------------------------------------
    def step(self) -> str:
        """Ship one batch of the oldest file with unread lines: 'sent', 'idle' (nothing to read)
        or 'failed' (Elasticsearch away or busy: the same records again later). A file's
        position moves past a batch only once every record of it is stored or refused."""
        if self._pending is None:
            self._pending = self._next_batch()
            if self._pending is None:
                return "idle"
        tracked, records, position = self._pending
        if records:
            left = self.send(records)
            if left is None or left:
                self._pending = (tracked, records if left is None else left, position)
                return "failed"
        self._pending = None
        tracked.offset = position
        self.save()
        return "sent"

    def _next_batch(self) -> tuple[Tracked, list[tuple[str, str, dict[str, Any]]], int] | None:
        for tracked in self.scan():
            if self.size(tracked) <= tracked.offset:
                continue
            records, position = self.read_batch(tracked)
            if position > tracked.offset:
                return tracked, records, position
        return None

    def ship_all(self, deadline_s: float = 60.0) -> bool:
        """Ship until every file is read to its end; False if Elasticsearch stayed away."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            outcome = self.step()
            if outcome == "idle":
                return True
            if outcome == "failed":
                time.sleep(self.retry_s)
        return False

    def close(self) -> None:
        for tracked in self.files.values():
            self._close(tracked)
        self.client.close()


# -- metrics and health -----------------------------------------------------------------------
def push_metrics(shipper: Shipper) -> bool:
    """Records shipped and dropped per service, bytes to ship: the shipper's own group."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, push_to_gateway

    settings = load_settings()
    registry = CollectorRegistry()
    shipped = Counter(
        "pipeline_log_records_shipped", "Log records stored", ["service"], registry=registry
    )
    dropped = Counter(
        "pipeline_log_records_dropped", "Log records dropped", ["service"], registry=registry
    )
    counts = shipper.counts
    # Every service's series from its first record on, drops at 0 included: increase() only
    # sees a drop on a series that existed before it.
    for service in sorted(set(counts.shipped) | set(counts.dropped)):
        shipped.labels(service).inc(counts.shipped.get(service, 0))
        dropped.labels(service).inc(counts.dropped.get(service, 0))
    Gauge("pipeline_log_backlog_bytes", "Log bytes not shipped yet", registry=registry).set(
        shipper.backlog_bytes()
    )
    try:
        push_to_gateway(
            settings.monitoring.pushgateway_url,
            job=JOB,
            registry=registry,
            grouping_key={"instance": settings.monitoring.metrics_instance},
            timeout=settings.monitoring.pushgateway_timeout_s,
        )
        return True
    except Exception as exc:
        log.warning("shipper metrics: push failed: %s", type(exc).__name__)
        return False


def serve_health(shipper: Shipper, port: int) -> ThreadingHTTPServer:
    """``GET /health``: the shipper is alive; the body says whether Elasticsearch answers."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps(
                {
                    "status": "ok",
                    "elasticsearch": {True: "up", False: "down", None: "unknown"}[
                        shipper.reachable
                    ],
                    "shipped": sum(shipper.counts.shipped.values()),
                    "dropped": sum(shipper.counts.dropped.values()),
                    "data_stream": shipper.stream,
                }
            ).encode()
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring.shipper", description=__doc__)
    parser.add_argument("--once", action="store_true", help="ship what is there, then exit")
    parser.add_argument("--folder", type=Path, default=None, help="default: var/logs")
    parser.add_argument("--poll-s", type=float, default=0.5)
    args = parser.parse_args(argv)
    from monitoring.logs import setup_logging

    settings = load_settings()
    monitoring = settings.monitoring
    if not monitoring.elasticsearch_url:
        parser.error("PIPELINE_ELASTICSEARCH_URL is not set: nowhere to ship to")
    setup_logging("log-shipper")
    folder = args.folder or settings.paths.logs
    folder.mkdir(parents=True, exist_ok=True)
    shipper = Shipper(
        folder,
        monitoring.elasticsearch_url,
        monitoring.elasticsearch_api_key,
        data_stream(settings.environment_name),
        timeout_s=monitoring.elasticsearch_timeout_s,
    )
    if args.once:
        ok = shipper.ship_all()
        push_metrics(shipper)
        shipper.close()
        return 0 if ok else 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    port = int(monitoring.log_shipper_url.rsplit(":", 1)[1].strip("/"))
    server = serve_health(shipper, port)
    log.info("shipping %s to %s", folder, shipper.stream)
    pushed = 0.0
    try:
        while not stop.is_set():
            outcome = shipper.step()
            if time.monotonic() - pushed > 15:
                push_metrics(shipper)
                pushed = time.monotonic()
            if outcome == "idle":
                stop.wait(args.poll_s)
            elif outcome == "failed":
                stop.wait(shipper.retry_s)
    finally:
        server.shutdown()
        push_metrics(shipper)
        shipper.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
