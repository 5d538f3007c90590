"""Redash on top of the ClickHouse tables: ``python -m monitoring.redash`` creates or updates,
through Redash's REST API (``pipeline.systems.redash``), the ClickHouse data source, the
queries, their visualizations and one dashboard. Rerunning updates them (each is found by its
name) and never duplicates them. ``--dry-run`` prints what would be sent, with no API call.

- The activity slices (``test.activity_daily``, the activity flow): views, likes and CTR by os;
  messages by gender; a day's slices by os, gender and age.
- The morning report's metrics (the reports flow): DAU, views and likes per day; the app's
  audience (feed only, messenger only, both); new users by source.

Each query is a named ClickHouse statement of its flow (``pipeline/<flow>/sql/clickhouse/``), the
one the flow or Grafana runs, with the real database names and its values as Redash parameters
(``{{ period.start }}``): the dialect check runs the same text on both ClickHouse engines.
The API key comes from the environment (``PIPELINE_REDASH_API_KEY``); in the compose stack:
``docker compose run --rm redash-provision``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from config.settings import CLICKHOUSE_DATABASES, Settings, load_settings
from pipeline.core.sql import load, render_text
from pipeline.systems.redash import Redash, RedashError

DATA_SOURCE = "ClickHouse (luigi-etl)"
DASHBOARD = "App activity and morning report (luigi-etl)"
TAGS = ["luigi-etl"]

# Redash parameters: how a statement's %(value)s is written in Redash's query text, and the
# parameter's definition (a dynamic default: the dashboard always shows recent days).
PARAMETERS: dict[str, tuple[str, dict[str, Any]]] = {
    "today": (
        "'{{ today }}'",
        {"name": "today", "title": "Up to", "type": "date", "value": "d_now"},
    ),
    "day": ("'{{ day }}'", {"name": "day", "title": "Day", "type": "date", "value": "d_yesterday"}),
    "days": ("{{ days }}", {"name": "days", "title": "Days", "type": "number", "value": 30}),
    "start": (
        "'{{ period.start }}'",
        {"name": "period", "title": "Period", "type": "date-range", "value": "d_last_7_days"},
    ),
    "end": (
        "'{{ period.end }}'",
        {"name": "period", "title": "Period", "type": "date-range", "value": "d_last_7_days"},
    ),
}


def chart(
    x: str, ys: list[str], series: str = "", kind: str = "line", stacking: str | None = None
) -> dict[str, Any]:
    """A Redash chart's options: ``x`` on the time axis, ``ys`` as values, one line per
    ``series`` value."""
    mapping = {x: "x", **{y: "y" for y in ys}}
    if series:
        mapping[series] = "series"
    return {
        "globalSeriesType": kind,
        "columnMapping": mapping,
        "xAxis": {"type": "datetime", "labels": {"enabled": True}},
        "yAxis": [{"type": "linear"}, {"type": "linear", "opposite": True}],
        "legend": {"enabled": True},
        "series": {"stacking": stacking},
        "seriesOptions": {},
        "sortX": True,
        "missingValuesAsZero": True,
    }


TABLE: dict[str, Any] = {"itemsPerPage": 25, "columns": []}


@dataclass(frozen=True)
class Visual:
    name: str
    type: str
    options: dict[str, Any]
    # Where it sits on the dashboard (Redash's grid is 6 columns wide); None: not on it.
    position: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class QuerySpec:
    name: str
    statement: str
    description: str
    visuals: tuple[Visual, ...] = field(default_factory=tuple)


QUERIES = (
    QuerySpec(
        "Activity: views, likes and CTR by os",
        "activity/example_views_by_os",
        "Per day and os: views, likes and CTR = likes / views (test.activity_daily).",
        (
            Visual("CTR by os", "CHART", chart("event_date", ["ctr"], "os"), (0, 0, 3, 8)),
            Visual(
                "Views by os", "CHART", chart("event_date", ["views"], "os", "column"), (3, 0, 3, 8)
            ),
        ),
    ),
    QuerySpec(
        "Activity: messages by gender",
        "activity/example_messages_by_gender",
        "Per day and gender: messages sent and their senders (test.activity_daily).",
        (
            Visual(
                "Messages sent by gender",
                "CHART",
                chart("event_date", ["messages_sent"], "gender"),
                (0, 8, 3, 8),
            ),
        ),
    ),
    QuerySpec(
        "Activity: a day's slices",
        "activity/day_rows",
        "One day of test.activity_daily: every slice (os, gender, age) and its value.",
        (Visual("Table", "TABLE", TABLE, (3, 8, 3, 8)),),
    ),
    QuerySpec(
        "Morning report: feed DAU, views, likes",
        "reports/feed_daily",
        "The feed report's metrics per day (CTR = likes / views).",
        (
            Visual("DAU", "CHART", chart("day", ["dau"]), (0, 16, 3, 8)),
            Visual("Views and likes", "CHART", chart("day", ["views", "likes"]), (3, 16, 3, 8)),
        ),
    ),
    QuerySpec(
        "Morning report: app audience",
        "reports/app_daily",
        "Users of the feed only, the messenger only and both, per day; messages and senders.",
        (
            Visual(
                "Audience",
                "CHART",
                chart("day", ["feed_only", "messenger_only", "both"], "", "column", "stack"),
                (0, 24, 3, 8),
            ),
        ),
    ),
    QuerySpec(
        "Morning report: new users by source",
        "reports/new_users",
        "Users whose first action (feed or messenger) is on that day, by source.",
        (
            Visual(
                "New users by source",
                "CHART",
                chart("day", ["new_users"], "source", "column", "stack"),
                (3, 24, 3, 8),
            ),
        ),
    ),
)


def query_text(statement: str, settings: Settings) -> tuple[str, list[dict[str, Any]]]:
    """The statement as Redash runs it: the databases' real names, each value a Redash
    parameter; and the parameters' definitions."""
    loaded = load(statement)
    text = loaded.text
    parameters: dict[str, dict[str, Any]] = {}
    for value in sorted(loaded.values):
        if value not in PARAMETERS:
            raise ValueError(f"{statement}: no Redash parameter for %({value})s")
        placeholder, definition = PARAMETERS[value]
        text = text.replace(f"%({value})s", placeholder)
        parameters[definition["name"]] = {**definition, "global": False, "locals": []}
    databases = {db: settings.clickhouse.database(db) for db in CLICKHOUSE_DATABASES}
    return render_text(statement, text, databases), list(parameters.values())


def data_source_options(settings: Settings) -> dict[str, Any]:
    ch = settings.clickhouse
    return {
        "url": settings.redash.clickhouse_url,
        "user": ch.user,
        "password": ch.password,
        "dbname": ch.database("test"),
        "timeout": int(ch.timeout_s),
    }


def plan(settings: Settings) -> list[dict[str, Any]]:
    """The queries as they are sent (``--dry-run`` prints them)."""
    out = []
    for spec in QUERIES:
        text, parameters = query_text(spec.statement, settings)
        out.append({"name": spec.name, "query": text, "parameters": parameters})
    return out


def provision(client: Redash, settings: Settings) -> dict[str, Any]:
    """Create or update everything; returns what is there (ids, the dashboard's URL)."""
    source = client.ensure_data_source(DATA_SOURCE, "clickhouse", data_source_options(settings))
    placed: list[tuple[int, dict[str, int]]] = []
    queries = {}
    for spec in QUERIES:
        text, parameters = query_text(spec.statement, settings)
        query = client.ensure_query(
            spec.name,
            {
                "query": text,
                "data_source_id": source["id"],
                "description": spec.description + f" Statement {spec.statement}.",
                "options": {"parameters": parameters},
                "tags": TAGS,
            },
        )
        queries[spec.name] = query["id"]
        for visual in spec.visuals:
            made = client.ensure_visualization(query, visual.name, visual.type, visual.options)
            if visual.position is not None:
                col, row, width, height = visual.position
                placed.append(
                    (int(made["id"]), {"col": col, "row": row, "sizeX": width, "sizeY": height})
                )
    dashboard = client.ensure_dashboard(DASHBOARD, TAGS)
    client.ensure_widgets(dashboard, placed)
    return {
        "data_source": source["id"],
        "queries": queries,
        "dashboard": f"{client.base}/dashboard/{dashboard['slug']}",
        "widgets": len(placed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitoring.redash", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--dry-run", action="store_true", help="print the queries; no API call")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.dry_run:
        print(json.dumps(plan(settings), indent=2, ensure_ascii=False))
        return 0
    try:
        done = provision(Redash(settings.redash), settings)
    except RedashError as exc:
        print(f"redash: {exc}", file=sys.stderr)
        return 2
    print(
        f"Redash at {settings.redash.url}: data source {DATA_SOURCE!r} (id {done['data_source']}),"
        f" {len(done['queries'])} queries, dashboard {done['dashboard']} "
        f"({done['widgets']} widgets)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
