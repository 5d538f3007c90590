"""Every call bounded in time, on the real servers: PostgreSQL connections carry
statement_timeout, lock_timeout and TCP keepalives and a cancelled statement says which limit;
every HTTP call has a timeout; a task past its worker_timeout is killed and reported; an error
ClickHouse writes into a 200 answer fails the task."""

from __future__ import annotations

import ast
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import luigi
import psycopg2
import pytest

from pipeline.core.tasks import PipelineTask
from pipeline.systems import postgres
from pipeline.systems.clickhouse import ClickHouse, ClickHouseError
from pipeline.systems.postgres import PostgresTimeout
from tests.fixtures.periods import outbox

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_connections_carry_the_timeouts_and_keepalives(
    stack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_PG_STATEMENT_TIMEOUT_S", "1.5")
    monkeypatch.setenv("PIPELINE_PG_LOCK_TIMEOUT_S", "0.5")
    conn = postgres.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone()[0] == "1500ms"
            cur.execute("SHOW lock_timeout")
            assert cur.fetchone()[0] == "500ms"
        params = conn.get_dsn_parameters()
        assert (params["keepalives"], params["keepalives_idle"], params["keepalives_count"]) == (
            "1",
            "30",
            "3",
        )
        conn.rollback()
        began = time.monotonic()
        with (
            pytest.raises(PostgresTimeout, match="PIPELINE_PG_STATEMENT_TIMEOUT_S"),
            conn.cursor() as cur,
            postgres.bounded("test/sleep"),
        ):
            cur.execute("SELECT pg_sleep(10)")
        assert time.monotonic() - began < 5
    finally:
        conn.close()


@pytest.mark.integration
def test_a_held_lock_fails_the_statement_within_lock_timeout_naming_it(
    stack: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_PG_LOCK_TIMEOUT_S", "1")
    holder = postgres.connect()
    try:
        with holder.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS ops.lock_probe (x int)")
            holder.commit()
            cur.execute("LOCK TABLE ops.lock_probe IN ACCESS EXCLUSIVE MODE")
        waiter = postgres.connect()
        began = time.monotonic()
        with (
            pytest.raises(PostgresTimeout) as caught,
            waiter.cursor() as cur,
            postgres.bounded("ops/probe"),
        ):
            cur.execute("SELECT count(*) FROM ops.lock_probe")
        waited = time.monotonic() - began
        assert 0.8 < waited < 5
        assert "ops/probe: gave up waiting 1 s for a lock" in str(caught.value)
        assert "PIPELINE_PG_LOCK_TIMEOUT_S" in str(caught.value)
        waiter.close()
    finally:
        holder.rollback()
        holder.close()


@pytest.mark.integration
def test_an_advisory_lock_held_elsewhere_times_out_with_a_clear_message(stack: None) -> None:
    with postgres.advisory_lock("clickhouse test.probe partition 202402", 5):
        began = time.monotonic()
        with (
            pytest.raises(postgres.LockTimeout, match="waited .* for another run holding"),
            postgres.advisory_lock("clickhouse test.probe partition 202402", 1),
        ):
            pass
        assert time.monotonic() - began < 4
        # Another partition is another lock.
        with postgres.advisory_lock("clickhouse test.probe partition 202403", 1):
            pass


# -- HTTP -------------------------------------------------------------------------------------
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "request", "urlopen"}


def http_calls_without_timeout(source: str) -> list[int]:
    """Lines of calls like ``requests.post(...)``, ``self.session.get(...)`` or
    ``urllib.request.urlopen(...)`` that pass no ``timeout=``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in HTTP_METHODS:
            continue
        owner = ast.unparse(node.func.value).rpartition(".")[2]
        if owner not in ("requests", "session", "request") and not owner.endswith("Session()"):
            continue
        if not any(k.arg == "timeout" for k in node.keywords):
            found.append(node.lineno)
    return found


def test_the_scan_finds_http_calls_without_a_timeout() -> None:
    source = (
        "requests.post(url, data=b)\n"
        "self.session.get(url, timeout=5)\n"
        "urllib.request.urlopen(url)\n"
        "self.session.headers.get('x')\n"
    )
    assert http_calls_without_timeout(source) == [1, 3]


def test_every_http_call_has_a_timeout() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in ("pipeline", "flags", "monitoring", "demo", "stack", "config")
        for path in sorted((ROOT / package).glob("**/*.py"))
        for line in http_calls_without_timeout(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# -- Luigi's worker timeout -------------------------------------------------------------------
class Sleeper(PipelineTask):
    task_namespace = "boundedtest"
    worker_timeout = 1
    seconds = luigi.IntParameter(description="How long to sleep.")

    def complete(self) -> bool:
        return False

    def run(self) -> None:
        time.sleep(self.seconds)


@pytest.mark.integration
def test_a_task_past_its_worker_timeout_is_killed_and_reported(stack: None, runtime: Path) -> None:
    began = time.monotonic()
    result = luigi.build(
        [Sleeper(seconds=60)], local_scheduler=True, detailed_summary=True, log_level="WARNING"
    )
    assert result.status.name == "FAILED"
    assert time.monotonic() - began < 20
    failures = outbox("failure")
    assert len(failures) == 1
    assert "Timeout: Task boundedtest.Sleeper" in failures[0]["text"]
    assert "(worker_timeout 1 s)" in failures[0]["text"]


# -- ClickHouse: an error inside a 200 answer -------------------------------------------------
MEMORY = "Code: 241. DB::Exception: Memory limit (for query) exceeded: would use 9.31 GiB"
OLD_MEMORY = (
    "Code: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded,"
    " e.what() = DB::Exception"
)


class ClickHouseThatFailsMidStream:
    """Answers like a ClickHouse whose query fails after the answer began: status 200, some
    rows, then the exception text. The activity flow's input check gets a good answer, DDL an
    empty 200, everything else the broken one."""

    def __init__(self, exception: str = MEMORY) -> None:
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                query = parse_qs(urlparse(self.path).query).get("query", [""])[0] or body
                fake.queries.append(query)
                if "AS source" in query:
                    meta = [{"name": "source"}, {"name": "rows"}, {"name": "max_time"}]
                    rows = [["feed_actions", 3, 1707177600], ["message_actions", 0, 0]]
                    answer = json.dumps({"meta": meta, "data": rows}).encode()
                elif query.lstrip().upper().startswith("CREATE"):
                    answer = b""
                else:
                    answer = f"user_id,views\n1,5\n2,7\n{exception}\n".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def broken_clickhouse(monkeypatch: pytest.MonkeyPatch) -> Iterator[ClickHouseThatFailsMidStream]:
    fake = ClickHouseThatFailsMidStream()
    monkeypatch.setenv("PIPELINE_CH_HTTP_PORT", str(fake.port))
    yield fake
    fake.close()


@pytest.mark.parametrize("exception", [MEMORY, OLD_MEMORY])
def test_an_exception_in_a_200_body_is_an_error_not_data(exception: str) -> None:
    from pipeline.systems.clickhouse import checked_body

    with pytest.raises(ClickHouseError, match="after its answer had begun .*Code: 241"):
        checked_body("activity/extract_feed", f"1,5\n2,7\n{exception}\n")
    assert checked_body("x/y", "1,5\n2,7\n") == "1,5\n2,7\n"
    with pytest.raises(ClickHouseError, match="exception code 241"):
        checked_body("x/y", "1,5\n", exception_code="241")


def test_a_query_whose_answer_breaks_off_raises(
    broken_clickhouse: ClickHouseThatFailsMidStream,
) -> None:
    ch = ClickHouse()
    with pytest.raises(ClickHouseError, match="Memory limit"):
        ch.frame("activity/extract_feed", day=dt.date(2024, 2, 6))
    with pytest.raises(ClickHouseError, match="Memory limit"):
        ch.query("activity/extract_feed", day=dt.date(2024, 2, 6))


@pytest.mark.integration
def test_a_clickhouse_error_in_a_200_answer_fails_the_task(
    stack: None, runtime: Path, broken_clickhouse: ClickHouseThatFailsMidStream
) -> None:
    from pipeline.activity.tasks import ActivityDaily

    day = dt.date(2024, 2, 6)
    result = luigi.build(
        [ActivityDaily(date=day)], local_scheduler=True, detailed_summary=True, log_level="ERROR"
    )
    assert result.status.name == "FAILED"
    assert any("extract_feed" in q or "message_actions" in q for q in broken_clickhouse.queries)
    failures = [m["text"] for m in outbox("failure")]
    assert failures and all("ClickHouseError" in text for text in failures)
    assert any("failed the query after its answer had begun (HTTP 200)" in t for t in failures)
    assert "psycopg2" not in json.dumps(failures)
    _ = psycopg2  # PostgreSQL stayed the real one: the flow's records live there
