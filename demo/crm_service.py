"""A small CRM HTTP JSON API serving generated customers: the demo's stand-in for a real CRM.

Real deployments point ``PIPELINE_CRM_URL`` at their CRM; this service exists so the demo and
the tests have one to talk to. It speaks the contract ``pipeline.systems.crm`` expects:

    GET /api/v1/customers?page=1&per_page=500
    Authorization: Bearer <PIPELINE_CRM_TOKEN>          (checked when the service has a token)

    200 {"data": [{"user_id": 1, "email": "…", "first_name": "…", "last_name": "…",
                   "prosthesis_id": "BP-000001", "order_date": "2023-04-02", "status": "active"}],
         "page": 1, "per_page": 500, "total": 295, "pages": 1}

    GET /health  -> 200 {"status": "ok"}

Customers are users 1..N (by default the telemetry generator's users but the last five, so the
mart shows how users unknown to the CRM are handled). Deterministic for a seed.

    python -m demo.crm_service --port 18090 --customers 295
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import random
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from config.settings import load_settings
from demo.telemetry_generator import TelemetrySpec, prosthesis_id

FIRST_NAMES = (
    "Anna", "Boris", "Chen", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Irina", "Jonas",
    "Kira", "Leo", "Maria", "Nikolai", "Olga", "Pavel", "Quinn", "Rosa", "Sergei", "Tanya",
)  # fmt: skip
LAST_NAMES = (
    "Ivanova", "Smith", "Petrov", "Garcia", "Kuznetsova", "Müller", "Sokolov", "Rossi",
    "Popova", "Novak", "Lebedev", "Kim", "Morozova", "Silva", "Volkov", "Dubois",
)  # fmt: skip
STATUSES = ("active", "active", "active", "active", "service", "returned")
MAX_PAGE_SIZE = 1000


def customers(count: int, seed: int = TelemetrySpec.seed) -> list[dict[str, Any]]:
    rng = random.Random(seed * 7919)
    out = []
    for user_id in range(1, count + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        out.append(
            {
                "user_id": user_id,
                "email": f"{first}.{last}.{user_id}@example.org".lower(),
                "first_name": first,
                "last_name": last,
                "prosthesis_id": prosthesis_id(user_id),
                "order_date": (dt.date(2023, 1, 1) + dt.timedelta(rng.randrange(365))).isoformat(),
                "status": rng.choice(STATUSES),
            }
        )
    return out


@dataclass
class CrmData:
    records: list[dict[str, Any]]
    token: str = ""
    requests: int = 0


def make_handler(data: CrmData) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib's name)
            pass  # quiet: the client logs what matters; requests may carry a token

        def send(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            data.requests += 1
            url = urlparse(self.path)
            if url.path == "/health":
                self.send(200, {"status": "ok"})
                return
            if url.path != "/api/v1/customers":
                self.send(404, {"error": f"no such resource {url.path}"})
                return
            if data.token and self.headers.get("Authorization") != f"Bearer {data.token}":
                self.send(401, {"error": "missing or wrong bearer token"})
                return
            query = parse_qs(url.query)
            try:
                page = int(query.get("page", ["1"])[0])
                per_page = int(query.get("per_page", ["100"])[0])
            except ValueError:
                self.send(400, {"error": "page and per_page must be integers"})
                return
            if page < 1 or not 1 <= per_page <= MAX_PAGE_SIZE:
                self.send(400, {"error": f"page >= 1 and 1 <= per_page <= {MAX_PAGE_SIZE}"})
                return
            total = len(data.records)
            chunk = data.records[(page - 1) * per_page : page * per_page]
            self.send(
                200,
                {
                    "data": chunk,
                    "page": page,
                    "per_page": per_page,
                    "total": total,
                    "pages": (total + per_page - 1) // per_page,
                },
            )

    return Handler


def serve(host: str, port: int, data: CrmData) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start the service in a background thread (the demo and tests); returns server and thread."""
    server = ThreadingHTTPServer((host, port), make_handler(data))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="crm-service", daemon=True)
    thread.start()
    return server, thread


def main(argv: list[str] | None = None) -> int:
    settings = load_settings()
    url = urlparse(settings.crm.url)
    parser = argparse.ArgumentParser(description="Serve generated CRM customers (demo stand-in).")
    parser.add_argument("--host", default=url.hostname or "127.0.0.1")
    parser.add_argument("--port", type=int, default=url.port or 18090)
    parser.add_argument("--customers", type=int, default=TelemetrySpec.users - 5)
    parser.add_argument("--seed", type=int, default=TelemetrySpec.seed)
    args = parser.parse_args(argv)
    data = CrmData(customers(args.customers, args.seed), token=settings.crm.token)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(data))
    print(f"CRM stand-in on http://{args.host}:{args.port}/api/v1/customers", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
