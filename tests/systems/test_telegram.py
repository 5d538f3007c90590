"""The Telegram client against a local HTTP server that speaks the Bot API (sendMessage,
sendPhoto as multipart, a 429 with retry_after, an error), and the outbox fallback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from config.settings import load_settings
from pipeline.systems.telegram import CAPTION_LIMIT, MESSAGE_LIMIT, Notifier, NotifyError

TOKEN = "123456:SECRET-token"


class BotApi:
    """Answers /bot<token>/<method> like Telegram; ``script`` gives the status per call."""

    def __init__(self, script: list[tuple[int, dict[str, Any]]]) -> None:
        self.script = script
        self.calls: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["Content-Length"])
                kind = self.headers.get("Content-Type", "")
                body = self.rfile.read(length)
                call: dict[str, Any] = {"path": self.path, "type": kind.split(";")[0]}
                if kind.startswith("multipart/form-data"):
                    import email.parser

                    message = email.parser.BytesParser().parsebytes(
                        b"Content-Type: " + kind.encode() + b"\r\n\r\n" + body
                    )
                    for part in message.get_payload():  # type: ignore[union-attr]
                        name = part.get_param("name", header="content-disposition")
                        payload = part.get_payload(decode=True)
                        call[name] = payload if name == "photo" else payload.decode()
                else:
                    from urllib.parse import parse_qs

                    call.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
                api.calls.append(call)
                status, answer = api.script[min(len(api.calls), len(api.script)) - 1]
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


OK = (200, {"ok": True, "result": {"message_id": 1}})


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr("pipeline.systems.telegram.time.sleep", waited.append)
    return waited


def telegram(monkeypatch: pytest.MonkeyPatch, api: BotApi) -> Notifier:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_CHAT_ID", "-100777")
    monkeypatch.setenv("TELEGRAM_API_URL", api.url)
    return Notifier()


@pytest.fixture
def api_factory() -> Iterator[Any]:
    made: list[BotApi] = []

    def make(script: list[tuple[int, dict[str, Any]]]) -> BotApi:
        made.append(BotApi(script))
        return made[-1]

    yield make
    for api in made:
        api.server.shutdown()
        api.server.server_close()


def test_a_message_is_sent_and_clipped_to_4096(
    monkeypatch: pytest.MonkeyPatch, api_factory: Any
) -> None:
    api = api_factory([OK])
    assert telegram(monkeypatch, api).send("x" * 5000) == "telegram"
    call = api.calls[0]
    assert call["path"] == f"/bot{TOKEN}/sendMessage" and call["chat_id"] == "-100777"
    assert len(call["text"]) == MESSAGE_LIMIT and call["text"].endswith("…")


def test_a_photo_is_multipart_with_a_caption_of_at_most_1024(
    monkeypatch: pytest.MonkeyPatch, api_factory: Any
) -> None:
    api = api_factory([OK])
    png = b"\x89PNG\r\n\x1a\nfake"
    assert telegram(monkeypatch, api).send_photo(png, "c" * 3000) == "telegram"
    call = api.calls[0]
    assert call["path"].endswith("/sendPhoto") and call["type"] == "multipart/form-data"
    assert call["photo"] == png and len(call["caption"]) == CAPTION_LIMIT


def test_429_waits_retry_after_then_sends(
    monkeypatch: pytest.MonkeyPatch, api_factory: Any, sleeps: list[float]
) -> None:
    api = api_factory(
        [(429, {"ok": False, "error_code": 429, "parameters": {"retry_after": 3}}), OK]
    )
    telegram(monkeypatch, api).send("hello")
    assert sleeps == [3.0] and len(api.calls) == 2


def test_an_error_is_raised_clearly_without_the_token(
    monkeypatch: pytest.MonkeyPatch, api_factory: Any, sleeps: list[float]
) -> None:
    api = api_factory([(400, {"ok": False, "description": f"Bad Request: chat not found {TOKEN}"})])
    with pytest.raises(NotifyError, match="sendMessage refused: HTTP 400: Bad Request") as caught:
        telegram(monkeypatch, api).send("hello")
    assert TOKEN not in str(caught.value)


def test_unreachable_telegram_never_shows_the_token(
    monkeypatch: pytest.MonkeyPatch, api_factory: Any, sleeps: list[float]
) -> None:
    api = api_factory([OK])
    notifier = telegram(monkeypatch, api)
    api.server.shutdown()
    api.server.server_close()
    with pytest.raises(NotifyError, match="unreachable") as caught:
        notifier.send("hello")
    assert TOKEN not in str(caught.value)


def test_without_telegram_settings_messages_and_images_go_to_the_outbox(
    runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    notifier = Notifier()
    text_file = Path(notifier.send("report text", kind="report-feed"))
    photo_file = Path(notifier.send_photo(b"\x89PNGdata", "a caption", kind="report-feed"))
    assert text_file.parent == load_settings().paths.outbox
    assert json.loads(text_file.read_text())["text"] == "report text"
    message = json.loads(photo_file.read_text())
    assert message["text"] == "a caption" and Path(message["photo"]).read_bytes() == b"\x89PNGdata"
