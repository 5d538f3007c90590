"""The CRM client against a local HTTP server: paging, auth, retries with backoff, 429's
Retry-After, an unreachable CRM, and malformed answers, each with a clear error that carries no
personal data."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from config.settings import CrmSettings
from demo.crm_service import CrmData, customers, serve
from pipeline.systems.crm import CrmClient, CrmError

Answer = tuple[int, dict[str, str], bytes]


class Scripted:
    """An HTTP server answering each request with the next scripted answer (the last repeats)."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers
        self.seen: list[tuple[str, str | None]] = []
        script = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                script.seen.append((self.path, self.headers.get("Authorization")))
                index = min(len(script.seen), len(script.answers)) - 1
                status, headers, body = script.answers[index]
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def page(records: list[dict[str, Any]], pages: int = 1) -> Answer:
    body = {"data": records, "page": 1, "per_page": 500, "total": len(records), "pages": pages}
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


GOOD = customers(3)
SECRET = "tok-not-for-logs"


@pytest.fixture
def scripted() -> Iterator[Callable[[list[Answer]], Scripted]]:
    made: list[Scripted] = []

    def make(answers: list[Answer]) -> Scripted:
        made.append(Scripted(answers))
        return made[-1]

    yield make
    for server in made:
        server.close()


def client(url: str, sleeps: list[float], **overrides: Any) -> CrmClient:
    settings = CrmSettings(
        url=url,
        token=SECRET,
        timeout_s=2.0,
        max_attempts=overrides.pop("max_attempts", 3),
        backoff_s=0.25,
        page_size=overrides.pop("page_size", 2),
    )
    return CrmClient(settings, sleep=sleeps.append)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_pages_are_followed_with_the_bearer_token() -> None:
    data = CrmData(customers(5), token=SECRET)
    server, _ = serve("127.0.0.1", 0, data)
    try:
        found = list(client(f"http://127.0.0.1:{server.server_address[1]}", []).customers())
    finally:
        server.shutdown()
        server.server_close()
    assert [c.user_id for c in found] == [1, 2, 3, 4, 5]
    assert data.requests == 3  # pages of 2: 2 + 2 + 1
    assert found[0].email.endswith("@example.org") and found[0].order_date is not None


def test_a_wrong_token_is_a_clear_error_without_the_token() -> None:
    server, _ = serve("127.0.0.1", 0, CrmData(customers(5), token="the-right-one"))
    try:
        with pytest.raises(CrmError, match="HTTP 401: missing or wrong bearer token") as caught:
            list(client(f"http://127.0.0.1:{server.server_address[1]}", []).customers())
    finally:
        server.shutdown()
        server.server_close()
    assert SECRET not in str(caught.value)


def test_5xx_is_retried_with_backoff_then_succeeds(scripted: Any) -> None:
    crm = scripted([(503, {}, b"busy"), (502, {}, b"bad gateway"), page(GOOD)])
    sleeps: list[float] = []
    assert len(list(client(crm.url, sleeps).customers())) == 3
    assert sleeps == [0.25, 0.5]
    assert all(auth == f"Bearer {SECRET}" for _, auth in crm.seen)


def test_429_waits_for_retry_after(scripted: Any) -> None:
    crm = scripted([(429, {"Retry-After": "7"}, b""), page(GOOD)])
    sleeps: list[float] = []
    assert len(list(client(crm.url, sleeps).customers())) == 3
    assert sleeps == [7.0]


def test_5xx_to_the_last_attempt_fails_clearly(scripted: Any) -> None:
    crm = scripted([(500, {}, b"boom")])
    sleeps: list[float] = []
    with pytest.raises(CrmError, match=r"page 1: HTTP 500 after 3 attempts"):
        list(client(crm.url, sleeps).customers())
    assert len(crm.seen) == 3 and sleeps == [0.25, 0.5]


def test_an_unreachable_crm_fails_clearly() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CrmError, match=r"unreachable \(ConnectionError\) after 2 attempts"):
        list(client(url, [], max_attempts=2).customers())


def record(**changes: Any) -> dict[str, Any]:
    out = dict(GOOD[0])
    out.update(changes)
    return {k: v for k, v in out.items() if v is not ...}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((200, {"Content-Type": "text/html"}, b"<html>oops</html>"), "not JSON (text/html)"),
        ((200, {}, b'{"items": []}'), "no 'data' list"),
        ((200, {}, b'{"data": [], "pages": "1"}'), "'pages' must be a non-negative integer"),
        (page([record(user_id="7")]), "record 0: field 'user_id' must be a positive integer"),
        (page([record(email=...)]), "record 0 (user_id 1): field 'email' is missing"),
        (page([record(first_name=5)]), "field 'first_name' is a int, not a string"),
        (page([record(order_date="02/04/2023")]), "'order_date' is not a YYYY-MM-DD date"),
        (page(["just a string"]), "record 0: a record must be an object, got str"),
    ],
)
def test_a_malformed_response_is_rejected_clearly(
    scripted: Any, answer: Answer, message: str
) -> None:
    crm = scripted([answer])
    with pytest.raises(CrmError, match=re.escape(message)) as caught:
        list(client(crm.url, []).customers())
    text = str(caught.value)
    assert crm.url in text and "page 1" in text
    for value in ("example.org", GOOD[0]["first_name"], GOOD[0]["last_name"], SECRET):
        assert value not in text


def test_a_customer_shows_no_personal_data_when_printed() -> None:
    from pipeline.systems.crm import parse_customer

    customer = parse_customer(GOOD[0], "here")
    assert GOOD[0]["email"] not in repr(customer)
    assert GOOD[0]["last_name"] not in repr(customer)
