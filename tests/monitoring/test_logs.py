"""JSON logs: ECS fields, context, redaction whatever the caller passes; the Elasticsearch shipper
against a local HTTP server speaking the part of the API it uses (X-Elastic-Product included):
down, slow, 429, partial bulk errors, a full queue — never blocking, never sending twice."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitoring.logs import (
    REDACTED,
    EcsFormatter,
    ElasticsearchShipper,
    PipelineHandler,
    RedactFilter,
    context,
)


class FakeElasticsearch:
    """Index templates and _bulk with ``create`` semantics (409 for an id already stored)."""

    def __init__(self, port: int = 0) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.templates: list[str] = []
        self.bulk_calls = 0
        self.delay = 0.0
        self.status = 200  # of the whole response
        self.item_status: dict[str, int] = {}  # message -> status for that item (once)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def reply(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith("/_index_template/"):
                    server.templates.append(json.loads(body)["index_patterns"][0])
                    self.reply(200, {"acknowledged": True})
                else:
                    self.do_bulk(body)

            def do_POST(self) -> None:  # noqa: N802
                self.do_bulk(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def do_bulk(self, body: bytes) -> None:
                time.sleep(server.delay)
                server.bulk_calls += 1
                if server.status != 200:
                    self.reply(
                        server.status, {"error": {"type": "es_rejected_execution_exception"}}
                    )
                    return
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                items = []
                for action, doc in zip(lines[::2], lines[1::2], strict=True):
                    meta = action["create"]
                    forced = server.item_status.pop(doc["message"], None)
                    if forced:
                        items.append({"create": {"_id": meta["_id"], "status": forced}})
                    elif meta["_id"] in server.docs:
                        items.append({"create": {"_id": meta["_id"], "status": 409}})
                    else:
                        server.docs[meta["_id"]] = {**doc, "_index": meta["_index"]}
                        items.append({"create": {"_id": meta["_id"], "status": 201}})
                self.reply(
                    200,
                    {
                        "took": 1,
                        "errors": any(i["create"]["status"] > 299 for i in items),
                        "items": items,
                    },
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def messages(self) -> list[str]:
        return sorted(d["message"] for d in self.docs.values())


@pytest.fixture
def es() -> Iterator[FakeElasticsearch]:
    fake = FakeElasticsearch()
    yield fake
    fake.stop()


def doc(message: str) -> dict[str, Any]:
    import uuid

    return {
        "_id": uuid.uuid4().hex,
        "@timestamp": "2024-01-15T10:00:00.000+00:00",
        "message": message,
    }


def wait(predicate: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def shipper(url: str, **kwargs: Any) -> ElasticsearchShipper:
    return ElasticsearchShipper(
        url, flush_s=0.1, retry_s=0.1, timeout_s=kwargs.pop("timeout_s", 2.0), **kwargs
    )


def test_records_arrive_once_in_daily_indices_with_the_template(es: FakeElasticsearch) -> None:
    ship = shipper(es.url)
    for i in range(25):
        ship.put(doc(f"m{i:02d}"))
    wait(lambda: len(es.docs) == 25)
    ship.close()
    assert es.templates == ["pipeline-logs-*"]
    assert es.messages() == [f"m{i:02d}" for i in range(25)]
    assert {d["_index"] for d in es.docs.values()} == {"pipeline-logs-2024.01.15"}
    assert ship.sent == 25 and ship.dropped == 0


def test_down_then_back_delivers_everything_once(es: FakeElasticsearch) -> None:
    port = es.port
    es.stop()
    ship = shipper(f"http://127.0.0.1:{port}")
    for i in range(10):
        ship.put(doc(f"d{i}"))
    time.sleep(0.5)  # the thread is failing and retrying; put() never blocked
    revived = FakeElasticsearch(port)
    try:
        wait(lambda: len(revived.docs) == 10)
    finally:
        ship.close()
        revived.stop()
    assert revived.messages() == [f"d{i}" for i in range(10)]


def test_a_slow_server_times_out_and_the_retry_never_duplicates(es: FakeElasticsearch) -> None:
    es.delay = 1.5  # longer than the client's timeout: the server stores, the client retries
    ship = shipper(es.url, timeout_s=0.5)
    for i in range(5):
        ship.put(doc(f"s{i}"))
    time.sleep(2.0)
    es.delay = 0.0
    wait(lambda: ship.sent == 5)
    ship.close()
    assert es.bulk_calls >= 2  # a retry happened
    assert es.messages() == [f"s{i}" for i in range(5)]  # each once: the retry's creates were 409


def test_429_and_partial_errors(es: FakeElasticsearch) -> None:
    es.status = 429
    ship = shipper(es.url)
    ship.put(doc("a"))
    ship.put(doc("b"))
    ship.put(doc("bad"))
    wait(lambda: es.bulk_calls >= 2)  # refused as a whole, retried
    es.item_status = {"b": 429, "bad": 400}
    es.status = 200
    wait(lambda: ship.sent == 2 and ship.failed == 1)
    ship.close()
    assert es.messages() == ["a", "b"]  # b retried alone after its item-level 429; bad dropped


def test_a_full_queue_drops_and_counts_without_blocking(es: FakeElasticsearch) -> None:
    es.stop()
    ship = shipper(es.url, capacity=5, batch=10)
    began = time.perf_counter()
    for i in range(1000):
        ship.put(doc(f"x{i}"))
    assert time.perf_counter() - began < 0.5
    assert ship.dropped >= 1000 - 5 - 10  # the queue and one batch in hand
    ship.close(timeout=1)


def test_ecs_fields_context_and_redaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PIPELINE_PG_PASSWORD", "pg-very-secret")
    monkeypatch.delenv("PIPELINE_ELASTICSEARCH_URL", raising=False)
    logger = logging.getLogger("test.ecs")
    handler = PipelineHandler("tests", log_dir=str(tmp_path))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with context(flow="sales", task_family="IngestFiles", file_id="abc123"):
            logger.info(
                "connecting with password=%s token: tok123 to"
                " http://x/bot123456:AAH-secret/sendMessage for %s",
                "pg-very-secret",
                "anna.smith@example.org",
                extra={"event_action": "load", "note": "Authorization: Bearer abc.def"},
            )
            try:
                raise ValueError("bad row for bob@example.org with pg-very-secret")
            except ValueError:
                logger.exception("load failed")
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = [json.loads(line) for line in (tmp_path / "tests.log").read_text().splitlines()]
    first, failure = lines
    assert {"@timestamp", "log.level", "log.logger", "message", "service.name"} <= set(first)
    assert first["service.name"] == "tests" and first["log.level"] == "info"
    assert first["labels.flow"] == "sales" and first["labels.file_id"] == "abc123"
    assert first["labels.task_family"] == "IngestFiles" and first["labels.run_id"]
    assert first["event.action"] == "load"
    text = json.dumps(lines)
    for secret in (
        "pg-very-secret",
        "tok123",
        "AAH-secret",
        "anna.smith@example.org",
        "bob@example.org",
        "abc.def",
    ):
        assert secret not in text, secret
    assert REDACTED in first["message"] and REDACTED in first["labels.note"]
    assert failure["error.type"] == "ValueError" and "Traceback" in failure["error.stack_trace"]
    assert capsys.readouterr().out.count("\n") == 2  # stdout too


def test_the_formatter_alone_is_valid_json() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    RedactFilter().filter(record)
    assert json.loads(EcsFormatter(service="s").format(record))["message"] == "hello world"
