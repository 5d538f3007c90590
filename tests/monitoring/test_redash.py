"""Redash provisioning against a local HTTP server speaking the part of Redash's REST API the
command uses (Redash cannot be installed here; the compose stack runs the real one): objects in
memory, the API key checked, lists paged as Redash pages them. A second run creates nothing."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from config.settings import CLICKHOUSE_DATABASES, RedashSettings, load_settings
from monitoring import redash as provisioning
from pipeline.core.sql import load, render
from pipeline.systems.http import RetryPolicy
from pipeline.systems.redash import Redash, RedashError

KEY = "test-api-key-0123456789"


class FakeRedash:
    """Redash 10's behaviour for the calls used: drafts on create, a default table
    visualization per new query, dashboards read by slug and written by id."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[int, dict[str, Any]]] = {
            kind: {}
            for kind in ("data_sources", "queries", "visualizations", "dashboards", "widgets")
        }
        self.creates: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.next_id = 1
        self.lock = threading.Lock()

    def add(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj["id"] = self.next_id
        self.next_id += 1
        self.objects[kind][obj["id"]] = obj
        self.creates.append(kind)
        return obj

    def query_view(self, query: dict[str, Any]) -> dict[str, Any]:
        visuals = [
            v for v in self.objects["visualizations"].values() if v["query_id"] == query["id"]
        ]
        return {**query, "visualizations": visuals}

    def dashboard_view(self, dashboard: dict[str, Any]) -> dict[str, Any]:
        widgets = []
        for widget in self.objects["widgets"].values():
            if widget["dashboard_id"] == dashboard["id"]:
                visual = self.objects["visualizations"].get(widget["visualization_id"] or -1)
                widgets.append({**widget, "visualization": visual})
        return {**dashboard, "widgets": widgets}

    @staticmethod
    def paged(items: list[dict[str, Any]], params: dict[str, list[str]]) -> dict[str, Any]:
        page, size = int(params.get("page", ["1"])[0]), int(params.get("page_size", ["25"])[0])
        if size > 250:
            raise ValueError("page_size too large")
        return {
            "count": len(items),
            "page": page,
            "page_size": size,
            "results": items[(page - 1) * size : page * size],
        }

    def handle(self, method: str, path: str, params: dict[str, list[str]], body: Any) -> Any:
        o = self.objects
        if path == "/api/data_sources":
            if method == "GET":
                return list(o["data_sources"].values())
            assert {"name", "type", "options"} <= set(body)
            return self.add("data_sources", dict(body))
        if m := re.fullmatch(r"/api/data_sources/(\d+)", path):
            o["data_sources"][int(m[1])].update(body)
            return o["data_sources"][int(m[1])]
        if path == "/api/queries":
            if method == "GET":
                live = [q for q in o["queries"].values() if not q["is_archived"]]
                return self.paged(live, params)
            assert {"name", "query", "data_source_id"} <= set(body)
            query = self.add("queries", {**body, "is_draft": True, "is_archived": False})
            self.add(
                "visualizations",
                {"query_id": query["id"], "type": "TABLE", "name": "Table", "options": {}},
            )
            return self.query_view(query)
        if m := re.fullmatch(r"/api/queries/(\d+)", path):
            query = o["queries"][int(m[1])]
            if method == "POST":
                query.update({k: v for k, v in body.items() if k != "id"})
            return self.query_view(query)
        if path == "/api/visualizations":
            assert {"query_id", "type", "name", "options"} <= set(body)
            assert int(body["query_id"]) in o["queries"]
            return self.add("visualizations", dict(body))
        if m := re.fullmatch(r"/api/visualizations/(\d+)", path):
            o["visualizations"][int(m[1])].update(
                {k: v for k, v in body.items() if k not in ("id", "query_id")}
            )
            return o["visualizations"][int(m[1])]
        if path == "/api/dashboards":
            if method == "GET":
                return self.paged(list(o["dashboards"].values()), params)
            slug = re.sub(r"[^a-z0-9]+", "-", body["name"].lower()).strip("-")
            return self.add(
                "dashboards", {"name": body["name"], "slug": slug, "is_draft": True, "tags": []}
            )
        if m := re.fullmatch(r"/api/dashboards/([^/]+)", path):
            if method == "GET":  # by slug
                found = [d for d in o["dashboards"].values() if d["slug"] == m[1]]
                return self.dashboard_view(found[0]) if found else None
            dashboard = o["dashboards"][int(m[1])]  # by id
            dashboard.update({k: v for k, v in body.items() if k in ("name", "tags", "is_draft")})
            return self.dashboard_view(dashboard)
        if path == "/api/widgets":
            assert int(body["dashboard_id"]) in o["dashboards"]
            return self.add(
                "widgets",
                {
                    k: body[k]
                    for k in ("dashboard_id", "visualization_id", "options", "text", "width")
                },
            )
        if m := re.fullmatch(r"/api/widgets/(\d+)", path):
            if method == "DELETE":
                del o["widgets"][int(m[1])]
                return None
            widget = o["widgets"][int(m[1])]
            widget["text"], widget["options"] = body["text"], body["options"]  # Redash reads both
            return widget
        return None


@pytest.fixture
def fake() -> Iterator[tuple[FakeRedash, str]]:
    state = FakeRedash()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.requests.append((self.command, url.path))
            if self.headers.get("Authorization") != f"Key {KEY}":
                self._answer(
                    403, {"message": "Couldn't find resource. Please login and try again."}
                )
                return
            try:
                with state.lock:
                    result = state.handle(self.command, url.path, parse_qs(url.query), body)
            except (AssertionError, KeyError, ValueError) as exc:
                self._answer(400, {"message": f"bad request: {exc!r}"})
                return
            if result is None and self.command != "DELETE":
                self._answer(404, {"message": "Not found"})
            else:
                self._answer(200, result)

        def _answer(self, status: int, payload: Any) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def client(url: str, key: str = KEY) -> Redash:
    return Redash(
        RedashSettings(url=url, api_key=key, timeout_s=5), RetryPolicy(attempts=2, backoff_s=0.01)
    )


def counts(state: FakeRedash) -> dict[str, int]:
    return {kind: len(objects) for kind, objects in state.objects.items()}


def test_provisioning_creates_everything_once_and_a_rerun_creates_nothing(
    fake: tuple[FakeRedash, str],
) -> None:
    state, url = fake
    settings = load_settings()
    done = provisioning.provision(client(url), settings)
    specs = provisioning.QUERIES
    placed = sum(1 for s in specs for v in s.visuals if v.position is not None)
    # One default table per query (Redash's), plus the charts; the day's slices use the table.
    charts = sum(1 for s in specs for v in s.visuals if v.name != "Table")
    assert counts(state) == {
        "data_sources": 1,
        "queries": len(specs),
        "visualizations": len(specs) + charts,
        "dashboards": 1,
        "widgets": placed,
    }
    assert done["dashboard"] == f"{url}/dashboard/app-activity-and-morning-report-luigi-etl"
    assert all(not q["is_draft"] for q in state.objects["queries"].values())
    assert all(not d["is_draft"] for d in state.objects["dashboards"].values())
    source = next(iter(state.objects["data_sources"].values()))
    assert source["type"] == "clickhouse"
    assert source["options"]["dbname"] == settings.clickhouse.database("test")
    views = next(q for q in state.objects["queries"].values() if "CTR by os" in q["name"])
    assert f"FROM {settings.clickhouse.database('test')}.activity_daily" in views["query"]
    assert "toDate('{{ today }}') - {{ days }}" in views["query"]
    assert {p["name"] for p in views["options"]["parameters"]} == {"today", "days"}

    # A person edits a query and duplicates a widget; a rerun puts the query back, removes the
    # duplicate, leaves the person's own text widget, and creates nothing.
    views["query"] = "SELECT 1"
    dashboard_id = next(iter(state.objects["dashboards"]))
    first = next(iter(state.objects["widgets"].values()))
    state.add("widgets", {**first, "id": None})
    state.add(
        "widgets",
        {
            "dashboard_id": dashboard_id,
            "visualization_id": None,
            "options": {},
            "text": "notes",
            "width": 1,
        },
    )
    before = {kind: set(objects) for kind, objects in state.objects.items()}
    state.creates.clear()
    again = provisioning.provision(client(url), settings)
    assert state.creates == []
    assert again == done
    assert "activity_daily" in views["query"]
    after = {kind: set(objects) for kind, objects in state.objects.items()}
    assert after["widgets"] == before["widgets"] - {max(before["widgets"]) - 1}
    assert {k: v for k, v in after.items() if k != "widgets"} == {
        k: v for k, v in before.items() if k != "widgets"
    }


def test_lists_are_read_page_by_page(fake: tuple[FakeRedash, str]) -> None:
    state, url = fake
    for number in range(230):
        state.add(
            "queries",
            {"name": f"someone's query {number}", "is_archived": False, "is_draft": False},
        )
    provisioning.provision(client(url), load_settings())
    state.creates.clear()
    provisioning.provision(client(url), load_settings())
    assert state.creates == []
    assert ("GET", "/api/queries") in state.requests


def test_a_wrong_or_missing_api_key_is_a_clear_error_without_the_key(
    fake: tuple[FakeRedash, str],
) -> None:
    _, url = fake
    with pytest.raises(RedashError, match="HTTP 403") as refused:
        provisioning.provision(client(url, key="wrong-key-abcdef"), load_settings())
    assert "wrong-key-abcdef" not in str(refused.value)
    with pytest.raises(RedashError, match="PIPELINE_REDASH_API_KEY is not set"):
        client(url, key="")


def test_the_command_provisions_with_the_key_from_the_environment(
    fake: tuple[FakeRedash, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state, url = fake
    monkeypatch.setenv("PIPELINE_REDASH_URL", url)
    monkeypatch.setenv("PIPELINE_REDASH_API_KEY", KEY)
    assert provisioning.main([]) == 0
    assert "dashboard" in capsys.readouterr().out and counts(state)["dashboards"] == 1
    monkeypatch.setenv("PIPELINE_REDASH_API_KEY", "not-the-key")
    assert provisioning.main([]) == 2
    assert "HTTP 403" in capsys.readouterr().err


@pytest.mark.parametrize("spec", provisioning.QUERIES, ids=lambda s: s.statement)
def test_each_query_is_its_statement_with_redash_parameters(spec: provisioning.QuerySpec) -> None:
    """Redash's parameters filled with the statement's check values give the statement the
    dialect check runs on both ClickHouse engines."""
    settings = load_settings()
    text, parameters = provisioning.query_text(spec.statement, settings)
    check = load(spec.statement).check_params
    filled = text
    for name, value in check.items():
        placeholder = provisioning.PARAMETERS[name][0]
        filled = filled.replace(placeholder.strip("'"), str(value))
    databases = {db: settings.clickhouse.database(db) for db in CLICKHOUSE_DATABASES}
    assert filled == render(spec.statement, {**databases, **check})
    assert {p["name"] for p in parameters} == {
        provisioning.PARAMETERS[v][1]["name"] for v in load(spec.statement).values
    }
