"""Logs that arrive: JSON lines with ECS fields, context and redaction whatever the caller passes;
written by several processes into one file (one write per line, rotation under a lock); shipped
from the files into an Elasticsearch data stream by the project's shipper, with each record's own
id, against a local HTTP server speaking the part of the API it uses (X-Elastic-Product
included): once each, after a restart, with the server down, slow, answering 429, refusing some
records (counted as dropped) — and from real ``luigi`` commands, forked workers and a command
that ends within a second included. The shipper never ships its own transport chatter."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
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
    JsonLinesFile,
    PipelineHandler,
    RedactFilter,
    context,
)
from monitoring.shipper import Shipper

ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).parent / "luigi")
STREAM = "logs-pipeline-tests"


class FakeElasticsearch:
    """Lifecycle policies, index templates and _bulk with ``create`` semantics (409 for an id
    already stored)."""

    def __init__(self, port: int = 0) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.templates: list[str] = []
        self.policies: list[str] = []
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
                    template = json.loads(body)
                    assert "data_stream" in template
                    server.templates.append(template["index_patterns"][0])
                    self.reply(200, {"acknowledged": True})
                elif self.path.startswith("/_ilm/policy/"):
                    server.policies.append(self.path.rsplit("/", 1)[1])
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
                        error = {"type": "mapper_parsing_exception", "reason": "bad field"}
                        items.append(
                            {"create": {"_id": meta["_id"], "status": forced, "error": error}}
                        )
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


def wait(predicate: Any, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def write_records(folder: Path, messages: list[str], service: str = "tests") -> list[str]:
    """Log ``messages`` through the project's handler into ``folder``; their ids."""
    logger = logging.getLogger(f"test.ship.{service}")
    logger.propagate = False
    handler = PipelineHandler(service, log_dir=str(folder))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for message in messages:
            logger.info(message)
    finally:
        logger.removeHandler(handler)
        handler.close()
    return file_ids(folder)


def file_ids(folder: Path) -> list[str]:
    """The event ids of every record in the folder's log files."""
    ids = []
    for path in sorted(folder.glob("*.log*")):
        ids += [json.loads(line)["event.id"] for line in path.read_text().splitlines()]
    return ids


def shipper(folder: Path, url: str, **kwargs: Any) -> Shipper:
    return Shipper(folder, url, stream=STREAM, retry_s=0.1, **{"timeout_s": 2.0, **kwargs})


def test_records_arrive_once_with_their_own_ids_in_the_data_stream(
    tmp_path: Path, es: FakeElasticsearch, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = write_records(tmp_path, [f"m{i:02d}" for i in range(25)])
    ship = shipper(tmp_path, es.url, batch=10)
    assert ship.ship_all()
    ship.close()
    assert sorted(es.docs) == sorted(ids)  # the record's event.id is the document id
    assert es.messages() == [f"m{i:02d}" for i in range(25)]
    assert {d["_index"] for d in es.docs.values()} == {STREAM}
    assert es.templates == ["logs-pipeline-*"] and es.policies == ["pipeline-logs"]
    assert "event.id" not in next(iter(es.docs.values()))
    assert ship.counts.shipped == {"tests": 25} and ship.counts.dropped == {}
    assert es.bulk_calls == 3


def test_a_restart_resumes_where_it_was_and_a_resend_never_duplicates(
    tmp_path: Path, es: FakeElasticsearch
) -> None:
    write_records(tmp_path, [f"a{i}" for i in range(10)])
    first = shipper(tmp_path, es.url)
    assert first.ship_all()
    first.close()
    write_records(tmp_path, [f"b{i}" for i in range(5)])
    calls = es.bulk_calls
    second = shipper(tmp_path, es.url)  # the saved positions: only the new records go
    assert second.ship_all()
    second.close()
    assert es.bulk_calls == calls + 1 and len(es.docs) == 15
    (tmp_path / ".shipper" / "state.json").unlink()  # positions lost: everything again
    third = shipper(tmp_path, es.url)
    assert third.ship_all()
    third.close()
    assert len(es.docs) == 15  # each a 409: stored once
    assert sum(third.counts.shipped.values()) == 0


def test_down_then_back_delivers_everything_once(tmp_path: Path, es: FakeElasticsearch) -> None:
    port = es.port
    es.stop()
    write_records(tmp_path, [f"d{i}" for i in range(10)])
    ship = shipper(tmp_path, f"http://127.0.0.1:{port}")
    assert ship.step() == "failed" and ship.reachable is False
    revived = FakeElasticsearch(port)
    try:
        assert ship.ship_all()
    finally:
        ship.close()
        revived.stop()
    assert revived.messages() == [f"d{i}" for i in range(10)]
    lines = (tmp_path / "tests.log").read_text()
    assert lines.count("\n") == 10  # the shipper's own warnings went to its own logger


def test_a_slow_server_times_out_and_the_retry_never_duplicates(
    tmp_path: Path, es: FakeElasticsearch
) -> None:
    es.delay = 1.5  # longer than the client's timeout: the server stores, the client retries
    write_records(tmp_path, [f"s{i}" for i in range(5)])
    ship = shipper(tmp_path, es.url, timeout_s=0.5)
    assert ship.step() == "failed"
    es.delay = 0.0
    assert ship.ship_all()
    ship.close()
    wait(lambda: es.bulk_calls >= 2)  # the first, slow request has finished too
    assert es.messages() == [f"s{i}" for i in range(5)]  # each once: the retry's creates were 409


def test_429_is_retried_and_refused_records_and_broken_lines_are_dropped_and_counted(
    tmp_path: Path, es: FakeElasticsearch
) -> None:
    write_records(tmp_path, ["a", "b", "bad"])
    with (tmp_path / "tests.log").open("a") as log:
        log.write("this is not json\n")
    es.status = 429
    ship = shipper(tmp_path, es.url)
    assert ship.step() == "failed"  # refused as a whole: retried
    es.item_status = {"b": 429, "bad": 400}
    es.status = 200
    assert ship.step() == "failed"  # b's item-level 429: the batch again
    assert ship.ship_all()
    ship.close()
    assert es.messages() == ["a", "b"]
    assert ship.counts.shipped == {"tests": 2}
    assert ship.counts.dropped == {"tests": 2}  # the refused record and the broken line


def test_a_line_still_being_written_waits_for_its_end(
    tmp_path: Path, es: FakeElasticsearch
) -> None:
    write_records(tmp_path, ["whole"])
    with (tmp_path / "tests.log").open("a") as log:
        log.write('{"message": "half')
    ship = shipper(tmp_path, es.url)
    assert ship.ship_all()
    assert es.messages() == ["whole"]
    with (tmp_path / "tests.log").open("a") as log:
        log.write('", "@timestamp": "2024-01-15T10:00:00.000+00:00"}\n')
    assert ship.ship_all()
    ship.close()
    assert es.messages() == ["half", "whole"]


def _write_many(folder: Path, n: int, tag: str) -> None:
    handler = JsonLinesFile(folder / "shared.log", max_bytes=64 * 1024, backups=200)
    handler.setFormatter(EcsFormatter(service="shared"))
    handler.addFilter(RedactFilter())
    for i in range(n):
        record = logging.LogRecord(
            "w", logging.INFO, __file__, 1, f"{tag}-{i} " + "x" * 200, None, None
        )
        handler.handle(record)
    handler.close()


def test_processes_share_a_file_through_rotation_without_losing_or_mixing_lines(
    tmp_path: Path, es: FakeElasticsearch
) -> None:
    pids = []
    for tag in ("p0", "p1", "p2"):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                _write_many(tmp_path, 1000, tag)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    files = sorted(tmp_path.glob("shared.log*"))
    assert len(files) > 8  # it rotated many times, by all three processes
    lines = [line for f in files for line in f.read_text().splitlines()]
    assert len(lines) == 3000
    assert all(json.loads(line)["message"].endswith("x" * 200) for line in lines)  # none mixed
    ship = shipper(tmp_path, es.url)
    assert ship.ship_all()
    ship.close()
    assert len(es.docs) == 3000


def test_a_rotated_file_is_finished_under_its_new_name(
    tmp_path: Path, es: FakeElasticsearch
) -> None:
    write_records(tmp_path, ["one", "two"])
    ship = shipper(tmp_path, es.url)
    assert ship.ship_all()
    write_records(tmp_path, ["three"])
    (tmp_path / "tests.log").rename(tmp_path / "tests.log.1")  # rotated, one record unread
    write_records(tmp_path, ["four"])
    assert ship.ship_all()
    ship.close()
    assert es.messages() == ["four", "one", "three", "two"]


# -- real processes ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command_env(runtime: Path, es: FakeElasticsearch) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LUIGI_CONFIG_PATH": str(ROOT / "luigi.cfg"),
        "PIPELINE_RUNTIME_DIR": str(runtime),
        "PIPELINE_ELASTICSEARCH_URL": es.url,
        "PIPELINE_ENV": "tests",
        "PIPELINE_LOG_SHIPPER_URL": f"http://127.0.0.1:{free_port()}",
        "PIPELINE_PUSHGATEWAY_URL": f"http://127.0.0.1:{free_port()}",  # nothing there
    }


@pytest.fixture
def running_shipper(tmp_path: Path, es: FakeElasticsearch) -> Iterator[dict[str, str]]:
    """``python -m monitoring.shipper`` for a runtime folder of its own, shipping to ``es``."""
    env = command_env(tmp_path, es)
    (tmp_path / "logs").mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitoring.shipper", "--poll-s", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    yield env
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output


def every_record_arrives(folder: Path, es: FakeElasticsearch) -> list[str]:
    def arrived() -> bool:
        return set(file_ids(folder)) <= set(es.docs)

    wait(arrived, 30)
    ids = file_ids(folder)
    assert len(ids) == len(set(ids))
    return ids


def test_a_luigi_command_with_two_workers_ships_the_forked_workers_records(
    tmp_path: Path, es: FakeElasticsearch, running_shipper: dict[str, str]
) -> None:
    result = subprocess.run(
        [LUIGI, "--module", "tests.fixtures.cli_tasks", "LogsFromWorkers", "--workers", "2"]
        + ["--marker", str(tmp_path / "m"), "--local-scheduler"],
        cwd=ROOT,
        env=running_shipper,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    every_record_arrives(tmp_path / "logs", es)
    hello = [d for d in es.docs.values() if d["message"].startswith("hello from worker")]
    assert sorted(d["message"].split()[3] for d in hello) == ["0", "1", "2", "3"]
    workers = {d["process.pid"] for d in hello}
    parent = {d["process.pid"] for d in es.docs.values() if "Execution Summary" in d["message"]}
    assert len(workers) >= 2 and not workers & parent  # logged in forked processes
    assert {int((tmp_path / f"m.{n}").read_text()) for n in range(4)} == workers
    assert {d["_index"] for d in es.docs.values()} == {"logs-pipeline-tests"}


def test_a_command_that_ends_within_a_second_still_ships_everything(
    tmp_path: Path, es: FakeElasticsearch, running_shipper: dict[str, str]
) -> None:
    marker = tmp_path / "done"
    marker.write_text("ok\n")  # complete: the command only schedules, logs its summary and exits
    began = time.monotonic()
    result = subprocess.run(
        [LUIGI, "--module", "tests.fixtures.cli_tasks", "Succeeds", "--marker", str(marker)]
        + ["--local-scheduler"],
        cwd=ROOT,
        env=running_shipper,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ended = time.time()
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - began < 10
    luigi_log = tmp_path / "logs" / "luigi.log"
    last = json.loads(luigi_log.read_text().splitlines()[-1])
    # The command ended within a second of its last record: a sender thread in the process
    # would have had no time to flush it.
    assert ended - dt_seconds(last["@timestamp"]) < 1.0
    every_record_arrives(tmp_path / "logs", es)
    assert "Execution Summary" in es.docs[last["event.id"]]["message"]


def dt_seconds(stamp: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(stamp).timestamp()


def test_the_shipper_never_ships_its_own_transport_chatter(
    tmp_path: Path, es: FakeElasticsearch, running_shipper: dict[str, str]
) -> None:
    logs = tmp_path / "logs"
    for round_ in range(5):
        write_records(logs, [f"r{round_}-{i}" for i in range(3)], service="writer")
        time.sleep(0.3)
    every_record_arrives(logs, es)
    assert es.bulk_calls >= 3
    time.sleep(1.0)  # a few idle polls more
    own = [d for d in es.docs.values() if d["service.name"] == "log-shipper"]
    assert not [d for d in own if d["log.logger"].split(".")[0] in ("elastic_transport", "urllib3")]
    assert len(own) <= 2, [d["message"] for d in own]  # the start line (and a failed push), once


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
    # The console: the error only (INFO records of a library are for the files), as text.
    console = capsys.readouterr().out
    assert console.count("\n") == 1 and " ERROR  load failed (ValueError: " in console
    assert "{" not in console and "bob@example.org" not in console


def test_the_formatter_alone_is_valid_json() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    RedactFilter().filter(record)
    assert json.loads(EcsFormatter(service="s").format(record))["message"] == "hello world"
