"""Redash's REST API: the client of the provisioning command (``python -m monitoring.redash``).

The part of the API used, as Redash 10 serves it (``redash/handlers/api.py``):

- ``GET/POST /api/data_sources``, ``POST /api/data_sources/<id>``;
- ``GET/POST /api/queries`` (the list is paged: ``page``, ``page_size``; archived queries are not
  in it), ``GET/POST /api/queries/<id>`` (a query comes with its visualizations);
- ``POST /api/visualizations``, ``POST /api/visualizations/<id>``;
- ``GET/POST /api/dashboards`` (paged), ``GET /api/dashboards/<slug>`` (with its widgets),
  ``POST /api/dashboards/<id>``;
- ``POST /api/widgets``, ``POST /api/widgets/<id>``, ``DELETE /api/widgets/<id>``.

Authentication: ``Authorization: Key <PIPELINE_REDASH_API_KEY>`` (a user's API key; an admin's
to create a data source). The key is never logged or put in an error message.

The ``ensure_*`` methods make provisioning idempotent: an object is found by its name (a
visualization by its name within its query, a widget by its visualization within its
dashboard) and updated, and created only when it is not there, so a rerun updates and never
duplicates. Reads and updates are retried (``pipeline.systems.http``); a create is sent once,
since a create that failed on the way back may have happened (the next run finds it by name).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import requests

from config.settings import RedashSettings, load_settings
from pipeline.systems import http
from pipeline.systems.http import RetryPolicy

log = logging.getLogger(__name__)
PAGE_SIZE = 100
MAX_PAGES = 1_000

Obj = dict[str, Any]


class RedashError(RuntimeError):
    """Redash refused a request or could not be reached; the message names the request."""


class Redash:
    def __init__(
        self, settings: RedashSettings | None = None, policy: RetryPolicy | None = None
    ) -> None:
        self.settings = settings or load_settings().redash
        if not self.settings.api_key:
            raise RedashError(
                "PIPELINE_REDASH_API_KEY is not set: copy a Redash admin's API key (Settings, "
                "Account) into .env"
            )
        self.policy = policy or RetryPolicy()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Key {self.settings.api_key}"
        self.base = self.settings.url.rstrip("/")

    # --- the HTTP calls ----------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        params: dict[str, Any] | None = None,
        retry: bool = True,
    ) -> Any:
        """One API request; the answer's JSON (None for an empty body)."""
        where = f"Redash {method} {path}"
        try:
            response = http.request(
                lambda: self.session.request(
                    method,
                    self.base + path,
                    json=body,
                    params=params,
                    timeout=self.settings.timeout_s,
                ),
                where,
                self.policy if retry else RetryPolicy(attempts=1),
            )
        except http.GaveUp as exc:
            raise RedashError(f"{where}: {exc}") from None
        if response.status_code >= 400:
            raise RedashError(f"{where}: HTTP {response.status_code}: {_reason(response)}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise RedashError(f"{where}: the answer is not JSON") from None

    def pages(self, path: str) -> Iterator[Obj]:
        """Every object of a paged list (``{"count", "page", "page_size", "results"}``)."""
        for page in range(1, MAX_PAGES + 1):
            answer = self.call("GET", path, params={"page": page, "page_size": PAGE_SIZE})
            results = answer.get("results", []) if isinstance(answer, dict) else []
            yield from results
            if not results or page * PAGE_SIZE >= int(answer.get("count", 0)):
                return
        raise RedashError(f"Redash GET {path}: more than {MAX_PAGES} pages")

    # --- idempotent provisioning ---------------------------------------------------------------

    def ensure_data_source(self, name: str, type_: str, options: Obj) -> Obj:
        """The data source ``name`` with these options (created, or updated in place)."""
        body = {"name": name, "type": type_, "options": options}
        found = _named(self.call("GET", "/api/data_sources") or [], name)
        if found is None:
            log.info("Redash: creating data source %r", name)
            return dict(self.call("POST", "/api/data_sources", body, retry=False))
        return dict(self.call("POST", f"/api/data_sources/{found['id']}", body))

    def ensure_query(self, name: str, fields: Obj) -> Obj:
        """The query ``name`` (with its visualizations) holding ``fields`` (``query``,
        ``data_source_id``, ``description``, ``options``, ``tags``), published."""
        body = {"name": name, **fields}
        found = _named(self.pages("/api/queries"), name)
        if found is None:
            log.info("Redash: creating query %r", name)
            found = self.call("POST", "/api/queries", body, retry=False)
        # Created as a draft; published so the dashboard shows it to everyone.
        self.call("POST", f"/api/queries/{found['id']}", {**body, "is_draft": False})
        return dict(self.call("GET", f"/api/queries/{found['id']}"))

    def ensure_visualization(self, query: Obj, name: str, type_: str, options: Obj) -> Obj:
        """The visualization ``name`` of ``query`` (as returned by ``ensure_query``)."""
        body = {"name": name, "type": type_, "options": options, "description": ""}
        found = _named(query.get("visualizations", []), name)
        if found is None:
            log.info("Redash: creating visualization %r of %r", name, query["name"])
            return dict(
                self.call(
                    "POST", "/api/visualizations", {**body, "query_id": query["id"]}, retry=False
                )
            )
        return dict(self.call("POST", f"/api/visualizations/{found['id']}", body))

    def ensure_dashboard(self, name: str, tags: list[str]) -> Obj:
        """The dashboard ``name`` (with its widgets), published."""
        found = _named(self.pages("/api/dashboards"), name)
        if found is None:
            log.info("Redash: creating dashboard %r", name)
            found = self.call("POST", "/api/dashboards", {"name": name}, retry=False)
        self.call("POST", f"/api/dashboards/{found['id']}", {"tags": tags, "is_draft": False})
        return dict(self.call("GET", f"/api/dashboards/{found['slug']}"))

    def ensure_widgets(self, dashboard: Obj, placed: list[tuple[int, Obj]]) -> None:
        """One widget per visualization id of ``placed``, at its position (``{"col", "row",
        "sizeX", "sizeY"}``); a second widget of the same visualization is removed. Widgets
        of other visualizations (a person's additions) are left alone."""
        by_visualization: dict[int, list[Obj]] = {}
        for widget in dashboard.get("widgets") or []:
            visualization = widget.get("visualization") or {}
            if "id" in visualization:
                by_visualization.setdefault(int(visualization["id"]), []).append(widget)
        for visualization_id, position in placed:
            options = {"position": position, "isHidden": False, "parameterMappings": {}}
            existing = by_visualization.get(visualization_id, [])
            if not existing:
                body = {
                    "dashboard_id": dashboard["id"],
                    "visualization_id": visualization_id,
                    "options": options,
                    "text": "",
                    "width": 1,
                }
                self.call("POST", "/api/widgets", body, retry=False)
                continue
            keep, *extra = existing
            if keep.get("options") != options:
                self.call("POST", f"/api/widgets/{keep['id']}", {"options": options, "text": ""})
            for widget in extra:
                self.call("DELETE", f"/api/widgets/{widget['id']}")


def _named(objects: Any, name: str) -> Obj | None:
    """The first object called ``name``."""
    for obj in objects:
        if obj.get("name") == name:
            return dict(obj)
    return None


def _reason(response: requests.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(payload, dict):
        return str(payload.get("message") or payload.get("error") or payload)[:200]
    return str(payload)[:200]
