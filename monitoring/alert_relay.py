"""The alert relay: Alertmanager's webhook receiver, which sends each notification to Telegram.

Alertmanager (local stack and compose) posts every group of alerts here
(``POST /alertmanager``, webhook payload version 4); the relay writes one message per group —
firing or resolved, each alert's summary and description, its labels — and sends it with the
project's Telegram client (``pipeline.systems.telegram``: ``TELEGRAM_BOT_TOKEN`` and
``TELEGRAM_CHAT_ID`` from the environment, retries, Telegram's length limit) or, without them,
writes it to the outbox folder. A message that could not be sent answers 502, so Alertmanager
tries again; the token never appears in a log line or an answer.

    python -m monitoring.alert_relay        # the local stack starts it (PIPELINE_ALERT_RELAY_URL)
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from config.settings import load_settings

log = logging.getLogger("monitoring.alert_relay")
PATH = "/alertmanager"
# Labels every alert has, or that say nothing to the person reading the message.
QUIET_LABELS = {"alertname", "severity", "job", "instance", "__name__"}


def message(payload: dict[str, Any]) -> str:
    """One Telegram message for one Alertmanager notification (a group of alerts)."""
    status = payload.get("status", "firing")
    common = payload.get("commonLabels", {})
    name = common.get("alertname", "alert")
    severity = common.get("severity", "")
    alerts = payload.get("alerts", [])
    if status == "resolved":
        head = f"✅ Resolved: {name}"
    else:
        head = f"🔥 {name}" + (f" ({severity})" if severity else "")
    lines = [head]
    for alert in alerts:
        annotations = alert.get("annotations", {})
        labels = alert.get("labels", {})
        mark = "✅" if alert.get("status") == "resolved" else "•"
        summary = annotations.get("summary") or labels.get("alertname", name)
        lines.append(f"{mark} {summary}")
        if annotations.get("description") and status != "resolved":
            lines.append(f"  {annotations['description']}")
        shown = {k: v for k, v in sorted(labels.items()) if k not in QUIET_LABELS}
        if shown:
            lines.append("  " + ", ".join(f"{k}={v}" for k, v in shown.items()))
        if alert.get("startsAt"):
            lines.append(f"  since {alert['startsAt'][:16].replace('T', ' ')} UTC")
    environment = common.get("instance") or ""
    if environment:
        lines.append(f"environment: {environment}")
    return "\n".join(lines)


def deliver(payload: dict[str, Any]) -> str:
    """Send the notification; where it went ('telegram' or the outbox file)."""
    from pipeline.systems.telegram import Notifier

    return Notifier().send(message(payload), kind="alertmanager")


class Handler(BaseHTTPRequestHandler):
    server_version = "alert-relay"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # one line per request would be chatter; deliveries are logged below

    def reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/health":
            self.reply(200, {"status": "ok"})
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        if self.path != PATH:
            self.reply(404, {"error": f"post Alertmanager's webhooks to {PATH}"})
            return
        try:
            payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            self.reply(400, {"error": f"not an Alertmanager webhook: {exc}"})
            return
        name = payload.get("commonLabels", {}).get("alertname", "?")
        try:
            where = deliver(payload)
        except Exception as exc:  # Telegram away: Alertmanager sends it again
            log.error(
                "alert %s (%s) not delivered: %s: %s",
                name,
                payload.get("status"),
                type(exc).__name__,
                exc,
                extra={"event_action": "alert.undelivered"},
            )
            self.reply(502, {"error": type(exc).__name__})
            return
        log.info(
            "alert %s (%s, %d alert(s)) sent to %s",
            name,
            payload.get("status"),
            len(payload.get("alerts", [])),
            "Telegram" if where == "telegram" else "the outbox",
            extra={"event_action": "alert.delivered"},
        )
        self.reply(200, {"status": "sent"})


def serve(host: str, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitoring.alert_relay", description=__doc__)
    where = urlparse(load_settings().monitoring.alert_relay_url)
    parser.add_argument("--host", default=where.hostname or "127.0.0.1")
    parser.add_argument("--port", type=int, default=where.port or 19095)
    args = parser.parse_args(argv)
    from monitoring.logs import setup_logging

    setup_logging("alert-relay")
    server = serve(args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.info("alert relay on %s:%d%s", args.host, args.port, PATH)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
