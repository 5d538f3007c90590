"""Notifications: Telegram when configured, else the outbox folder.

Telegram's Bot API caps a message at 4096 characters; a 429 answer carries
``parameters.retry_after`` (seconds to wait). The token is part of the URL, so neither URLs nor
request errors are ever logged as they are: errors are reported with the token masked.
With no token or chat id, every message is written to ``var/outbox/`` as a JSON file instead
(the owner's only, mode 0600, like every notification file).

Every text is redacted like the logs (``monitoring.logs.redact``: secrets, tokens, e-mails)
before it leaves the process, to Telegram or to the outbox. Which messages are sent, and how
often, is the notification ledger's business (``pipeline.core.notifications``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from config.settings import Settings, load_settings
from monitoring.logs import redact
from pipeline.core.files import atomic_write
from pipeline.systems import http
from pipeline.systems.http import RetryPolicy

log = logging.getLogger(__name__)
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024


class NotifyError(RuntimeError):
    pass


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Notifier:
    def __init__(self, settings: Settings | None = None, max_tries: int | None = None) -> None:
        self.settings = settings or load_settings()
        self.max_tries = max_tries or self.settings.telegram.max_attempts

    def send(self, text: str, kind: str = "info") -> str:
        """Send ``text``; return where it went ('telegram' or the outbox file)."""
        text = redact(text)
        tg = self.settings.telegram
        if tg.configured:
            self._telegram("sendMessage", {"chat_id": tg.chat_id, "text": clip(text)})
            return "telegram"
        return str(self._outbox(kind, {"kind": kind, "text": text}))

    def send_photo(
        self, png: bytes, caption: str, kind: str = "info", name: str = "chart.png"
    ) -> str:
        """Send a PNG with a caption (clipped to Telegram's 1,024 characters); return where it
        went ('telegram' or the outbox file, the image beside it). One message: a report or an
        alert never half-arrives as a text without its picture."""
        caption = redact(caption)
        tg = self.settings.telegram
        if tg.configured:
            self._telegram(
                "sendPhoto",
                {"chat_id": tg.chat_id, "caption": clip(caption, CAPTION_LIMIT)},
                files={"photo": (name, png, "image/png")},
            )
            return "telegram"
        folder = self.settings.paths.outbox
        folder.mkdir(parents=True, exist_ok=True)
        image = (
            folder / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{kind}-{uuid.uuid4().hex[:6]}.png"
        )
        atomic_write(image, png)  # the owner's only, like every notification
        return str(self._outbox(kind, {"kind": kind, "text": caption, "photo": str(image)}))

    def _outbox(self, kind: str, payload: dict[str, Any]) -> Path:
        folder = self.settings.paths.outbox
        folder.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        path = folder / f"{stamp}-{kind}-{uuid.uuid4().hex[:6]}.json"
        atomic_write(path, json.dumps({**payload, "at": stamp}, ensure_ascii=False))
        return path

    def _telegram(
        self, method: str, data: dict[str, Any], files: dict[str, Any] | None = None
    ) -> None:
        tg = self.settings.telegram
        url = f"{tg.api_url.rstrip('/')}/bot{tg.token}/{method}"
        try:
            response = http.request(
                lambda: requests.post(url, data=data, files=files, timeout=tg.timeout_s),
                f"Telegram {method}",
                RetryPolicy(attempts=self.max_tries, backoff_s=2.0),
                retry_after=_retry_after,
                sleep=lambda seconds: time.sleep(seconds),
            )
        except http.GaveUp as exc:
            raise NotifyError(f"Telegram {method}: {str(exc).replace(tg.token, '***')}") from None
        if response.status_code != 200:
            description = _description(response).replace(tg.token, "***")
            raise NotifyError(
                f"Telegram {method} refused: HTTP {response.status_code}: {description}"
            )


def _retry_after(response: requests.Response) -> float:
    try:
        return float(response.json().get("parameters", {}).get("retry_after", 5))
    except (ValueError, AttributeError):
        return 5.0


def _description(response: requests.Response) -> str:
    try:
        return str(response.json().get("description", response.text[:200]))
    except (ValueError, AttributeError):
        return response.text[:200]
