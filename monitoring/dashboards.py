"""The Grafana dashboards, written as JSON under ``monitoring/grafana/dashboards`` (provisioned
from files by the compose stack). ``python -m monitoring.dashboards`` regenerates them; a test
holds the committed files equal to this module's output and runs every query.

- ``etl-pipeline`` (Pipeline health), Prometheus, last 24 hours, variable ``env`` (the
  environment: the metrics' ``instance``): runs by flow and outcome, failed runs, freshness per
  flow, durations, rows, files by flag status with the stuck and failed ones, alerts raised,
  log records dropped and waiting, alert rules firing, luigid's own task counters.
- ``etl-business`` (Business metrics), ClickHouse, last 2 days, variables ``env`` (the
  environment's ClickHouse data source), ``metric`` and ``slice``: the anomaly checks' metric
  per 15-minute slot (panel ``METRIC_PANEL_ID``, which alert messages link to) and the alerts
  sent; daily activity (views, likes, CTR on its own axis by os; messages by gender), weekly
  sales by region and the telemetry mart, each over a range that fits its data. Each panel's SQL
  is a named statement of the flow it shows (``pipeline/<flow>/sql/clickhouse/panel_*.sql``),
  with Grafana's ``$__timeFilter``; the dialect check runs them on both ClickHouse engines with
  the macro expanded (``expand_macros``).

Stable uids and panel ids, datasources referenced by their provisioned uids (``prometheus``,
``clickhouse``), no ``__inputs`` placeholders.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from config.settings import CLICKHOUSE_DATABASES
from pipeline.core.sql import load, render_text

OUT = Path(__file__).resolve().parent / "grafana" / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
CLICKHOUSE = {"type": "grafana-clickhouse-datasource", "uid": "clickhouse"}
# The business board's panels use the ClickHouse of the environment chosen in ``env``.
CLICKHOUSE_ENV = {"type": "grafana-clickhouse-datasource", "uid": "${env}"}
# The pipeline metrics of the environment chosen in ``env`` (the Pushgateway group).
ENV = 'instance=~"$env"'
# The panel an alert message's chart link opens (``viewPanel``): keep its id.
METRIC_PANEL_ID = 10
# The anomaly checks' metrics (config/alerts.toml), as the metric panel's SQL computes them.
METRICS = {
    "feed_users": "Feed active users",
    "views": "Views",
    "likes": "Likes",
    "ctr": "CTR",
    "messenger_users": "Messenger active users",
    "messages": "Messages sent",
}


def thresholds(*steps: tuple[str, float | None]) -> dict[str, Any]:
    """Absolute thresholds: (color, from value) pairs, the first from minus infinity."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


OK_THEN_RED = thresholds(("green", None), ("red", 1))
OK_THEN_ORANGE = thresholds(("green", None), ("orange", 1))


def _panel(
    id_: int,
    title: str,
    kind: str,
    targets: list[dict[str, Any]],
    x: int,
    y: int,
    w: int = 12,
    h: int = 8,
    unit: str = "short",
    description: str = "",
    datasource: dict[str, str] = PROMETHEUS,
    steps: dict[str, Any] | None = None,
    overrides: list[dict[str, Any]] | None = None,
    time_from: str = "",
    interval: str = "",
    options: dict[str, Any] | None = None,
    custom: dict[str, Any] | None = None,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if steps:
        defaults["thresholds"] = steps
        defaults["color"] = {"mode": "thresholds"}
    if custom:
        defaults["custom"] = custom
    panel: dict[str, Any] = {
        "id": id_,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
        "targets": targets,
    }
    if time_from:  # a range that fits the panel's data, whatever the dashboard's
        panel["timeFrom"] = time_from
    if interval:
        panel["interval"] = interval
    return panel


def prom(expr: str, legend: str, ref: str = "A", instant: bool = False) -> dict[str, Any]:
    return {
        "datasource": PROMETHEUS,
        "refId": ref,
        "expr": expr,
        "legendFormat": legend,
        "instant": instant,
        "range": not instant,
    }


def sql(query: str, ref: str = "A", fmt: int = 1) -> dict[str, Any]:
    # format 1 = table, 0 = time series (the ClickHouse plugin's query editor, raw SQL mode).
    return {
        "datasource": CLICKHOUSE_ENV,
        "refId": ref,
        "rawSql": query,
        "format": fmt,
        "editorType": "sql",
    }


def _dashboard(
    uid: str,
    title: str,
    panels: list[dict[str, Any]],
    tags: list[str],
    time_from: str,
    variables: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": tags,
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "1m",
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "panels": panels,
    }


def environment_variable() -> dict[str, Any]:
    """``env``: the environment whose pipeline metrics to show (their ``instance`` label)."""
    query = "label_values(pipeline_flow_max_age_seconds, instance)"
    return {
        "name": "env",
        "label": "Environment",
        "type": "query",
        "datasource": PROMETHEUS,
        "query": {"query": query, "refId": "env"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "includeAll": False,
        "multi": False,
        "current": {},
    }


def pipeline_dashboard() -> dict[str, Any]:
    stuck = 'status=~"received|validated|transformed|loaded"'
    panels = [
        _panel(
            1,
            "Runs by flow and outcome",
            "timeseries",
            [
                prom(
                    f"sum by (flow, outcome) (increase(pipeline_task_runs_total{{{ENV}}}[$__rate_interval]))",
                    "{{flow}} {{outcome}}",
                ),
            ],
            0,
            0,
            description="Task runs ended per interval (success, failure, broken, timeout, process_failure).",
            custom={"drawStyle": "bars", "stacking": {"mode": "normal"}, "fillOpacity": 80},
        ),
        _panel(
            2,
            "Failed runs",
            "stat",
            [
                prom(
                    f'sum by (flow) (increase(pipeline_task_runs_total{{outcome!="success",{ENV}}}[$__range]))',
                    "{{flow}}",
                    instant=True,
                ),
            ],
            12,
            0,
            w=6,
            steps=OK_THEN_RED,
            description="Runs that did not succeed in the time range, per flow (TaskFailures alerts on any in 30 minutes).",
        ),
        _panel(
            3,
            "Since last success",
            "bargauge",
            [
                prom(
                    f"time() - max by (flow) (pipeline_flow_last_success_timestamp_seconds{{{ENV}}})",
                    "{{flow}}",
                    instant=True,
                ),
            ],
            18,
            0,
            w=6,
            unit="s",
            description="Freshness: how long ago each flow last succeeded (a run with nothing to do counts). FlowLate fires past its schedule plus margin.",
            options={"displayMode": "basic", "orientation": "horizontal"},
        ),
        _panel(
            4,
            "Mean task duration",
            "bargauge",
            [
                prom(
                    f"sum by (task_family) (pipeline_task_seconds_total{{{ENV}}}) / sum by (task_family) (pipeline_task_timed_runs_total{{{ENV}}})",
                    "{{task_family}}",
                    instant=True,
                ),
            ],
            0,
            8,
            unit="s",
            options={"displayMode": "basic", "orientation": "horizontal"},
        ),
        _panel(
            5,
            "Last run duration",
            "timeseries",
            [
                prom(
                    f"max by (flow, task_family) (pipeline_task_last_duration_seconds{{{ENV}}})",
                    "{{task_family}}",
                ),
            ],
            12,
            8,
            unit="s",
        ),
        _panel(
            6,
            "Rows per flow and dataset",
            "timeseries",
            [
                prom(
                    f"sum by (flow, dataset, kind) (increase(pipeline_rows_total{{{ENV}}}[$__rate_interval]))",
                    "{{flow}} {{dataset}} {{kind}}",
                ),
            ],
            0,
            16,
            description="Rows read, written and rejected per interval.",
        ),
        _panel(
            7,
            "Rows in total",
            "table",
            [
                prom(
                    f"sum by (flow, dataset, kind) (pipeline_rows_total{{{ENV}}})",
                    "{{flow}} {{dataset}} {{kind}}",
                    instant=True,
                ),
            ],
            12,
            16,
        ),
        _panel(
            8,
            "Files by flag status",
            "bargauge",
            [
                prom(
                    f"sum by (dataset, status) (pipeline_files{{{ENV}}})",
                    "{{dataset}} {{status}}",
                    instant=True,
                ),
            ],
            0,
            24,
            description="Files per status from the flag ledger.",
            options={"displayMode": "basic", "orientation": "horizontal"},
        ),
        _panel(
            12,
            "Files stuck",
            "stat",
            [
                prom(
                    f"sum by (dataset, status) (pipeline_files{{{stuck},{ENV}}}) > 0 or on() vector(0)",
                    "{{dataset}} {{status}}",
                    instant=True,
                ),
            ],
            12,
            24,
            w=6,
            steps=OK_THEN_ORANGE,
            description="Files between two stages now (FilesStuck alerts after 2 hours): `flags list --status <status>`.",
        ),
        _panel(
            13,
            "Files failed or quarantined",
            "stat",
            [
                prom(
                    f'sum by (dataset, status) (pipeline_files{{status=~"failed|quarantined",{ENV}}}) > 0 or on() vector(0)',
                    "{{dataset}} {{status}}",
                    instant=True,
                ),
            ],
            18,
            24,
            w=6,
            steps=OK_THEN_RED,
            description="Failed files wait for `flags retry` (FilesFailed alerts after 30 minutes); quarantined files for a fix of the file or the contract.",
        ),
        _panel(
            9,
            "Alerts raised",
            "timeseries",
            [
                prom(
                    f"sum by (metric, kind) (increase(pipeline_alerts_total{{{ENV}}}[$__rate_interval]))",
                    "{{metric}} {{kind}}",
                ),
            ],
            0,
            32,
            description="Anomaly alert, repeat and recovery messages of the alerts flow.",
            custom={"drawStyle": "bars", "stacking": {"mode": "normal"}, "fillOpacity": 80},
        ),
        _panel(
            14,
            "Alert rules firing",
            "table",
            [prom('ALERTS{alertstate="firing"}', "{{alertname}}", instant=True)],
            12,
            32,
            description="Prometheus' alerts now (each also went to Telegram through Alertmanager).",
            options={"showHeader": True},
        ),
        _panel(
            10,
            "Log records dropped",
            "stat",
            [
                prom(
                    f"sum by (service) (increase(pipeline_log_records_dropped_total{{{ENV}}}[$__range])) or on() vector(0)",
                    "{{service}}",
                    instant=True,
                ),
            ],
            0,
            40,
            w=6,
            steps=OK_THEN_RED,
            description="Records the log shipper gave up on in the time range (not JSON, or refused by Elasticsearch); the lines stay in var/logs/.",
        ),
        _panel(
            15,
            "Logs waiting for Elasticsearch",
            "stat",
            [
                prom(
                    f"max(pipeline_log_backlog_bytes{{{ENV}}}) or on() vector(0)",
                    "backlog",
                    instant=True,
                ),
            ],
            6,
            40,
            w=6,
            unit="bytes",
            steps=thresholds(("green", None), ("orange", 1e6), ("red", 1e8)),
            description="Bytes of the log files not shipped yet (Elasticsearch slow or away; LogShippingBehind alerts after 15 minutes).",
        ),
        _panel(
            11,
            "luigid: tasks done and failed",
            "timeseries",
            [
                prom(
                    "sum by (family) (increase(luigi_task_done_total[$__rate_interval]))",
                    "done {{family}}",
                ),
                prom(
                    "sum by (family) (increase(luigi_task_failed_total[$__rate_interval]))",
                    "failed {{family}}",
                    ref="B",
                ),
            ],
            12,
            40,
            description="The central scheduler's own counters (runs through luigid only).",
        ),
    ]
    return _dashboard(
        "etl-pipeline",
        "Pipeline health",
        panels,
        ["pipeline", "luigi"],
        "now-24h",
        [environment_variable()],
    )


# Databases by their logical names; a deployment with a prefix edits the dashboards' SQL.
LOGICAL_DATABASES = {database: database for database in CLICKHOUSE_DATABASES}
# Values the dashboard's variables fill in, quoted by Grafana (``sqlstring``), in place of a
# statement's value slots.
GRAFANA_VALUES = {"metric": "${metric:sqlstring}", "slice": "${slice:sqlstring}"}


def panel_sql(name: str) -> str:
    """A panel's query: the named ClickHouse statement with the logical database names and the
    dashboard's variables, on one line (as Grafana's query editor shows it)."""
    statement = load(name)
    marks = {key: f"__grafana_{key}__" for key in statement.values}
    unknown = set(marks) - set(GRAFANA_VALUES)
    if unknown:
        raise ValueError(f"{name}: no dashboard variable for {sorted(unknown)}")
    text = render_text(name, statement.text, {**LOGICAL_DATABASES, **marks})
    for key, mark in marks.items():
        text = text.replace(f"'{mark}'", GRAFANA_VALUES[key])
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


_TIME_FILTER = re.compile(r"\$__timeFilter\(([^()]+)\)")


def expand_macros(
    query: str, start: str = "2024-01-01 00:00:00", end: str = "2024-02-01 00:00:00"
) -> str:
    """Grafana's ClickHouse macros as the plugin expands them, for running a panel's SQL
    elsewhere (the dialect check, the tests): ``$__timeFilter(col)`` is
    ``col >= toDateTime(start) AND col <= toDateTime(end)``."""
    return _TIME_FILTER.sub(
        lambda m: f"{m.group(1)} >= toDateTime('{start}') AND {m.group(1)} <= toDateTime('{end}')",
        query,
    )


def business_variables() -> list[dict[str, Any]]:
    slices = panel_sql("alerts/panel_slices")
    return [
        {
            "name": "env",
            "label": "Environment",
            "type": "datasource",
            "query": "grafana-clickhouse-datasource",
            "current": {"text": "ClickHouse", "value": "clickhouse"},
            "hide": 0,
        },
        {
            "name": "metric",
            "label": "Metric",
            "type": "custom",
            "query": ", ".join(f"{label} : {key}" for key, label in METRICS.items()),
            "current": {"text": METRICS["views"], "value": "views"},
            "options": [
                {"text": label, "value": key, "selected": key == "views"}
                for key, label in METRICS.items()
            ],
            "includeAll": False,
            "multi": False,
        },
        {
            "name": "slice",
            "label": "Slice",
            "type": "query",
            "datasource": CLICKHOUSE_ENV,
            "query": slices,
            "definition": slices,
            "refresh": 2,
            "current": {"text": "all", "value": "all"},
            "includeAll": False,
            "multi": False,
            # An alert's link may name a slice the list does not show (gender=female).
            "allowCustomValue": True,
        },
    ]


def business_dashboard() -> dict[str, Any]:
    daily = {"drawStyle": "line", "lineInterpolation": "stepAfter", "showPoints": "always"}
    panels = [
        _panel(
            METRIC_PANEL_ID,
            "Metric by 15-minute slot: $metric, $slice",
            "timeseries",
            [sql(panel_sql("alerts/panel_metric_slots"), fmt=0)],
            0,
            0,
            w=16,
            h=9,
            datasource=CLICKHOUSE_ENV,
            interval="15m",
            description="The anomaly checks' metric for one slice, per 15-minute slot, from the raw events (simulator.feed_actions, message_actions). An alert message's chart link opens this panel with its metric and slice.",
            custom={"drawStyle": "line", "lineInterpolation": "stepAfter", "fillOpacity": 10},
        ),
        _panel(
            5,
            "Anomaly alerts sent",
            "table",
            [sql(panel_sql("alerts/panel_alerts_sent"))],
            16,
            0,
            w=8,
            h=9,
            datasource=CLICKHOUSE_ENV,
            description="ops.alerts: every alert, repeat and recovery in the time range.",
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "change_pct"},
                    "properties": [
                        {"id": "unit", "value": "percent"},
                        {"id": "displayName", "value": "change"},
                    ],
                }
            ],
        ),
        _panel(
            1,
            "Views, likes and CTR by os",
            "timeseries",
            [sql(panel_sql("activity/panel_views_ctr_by_os"), fmt=0)],
            0,
            9,
            datasource=CLICKHOUSE_ENV,
            time_from="30d",
            interval="1d",
            description="test.activity_daily, the os slice: views and likes on the left axis, CTR (likes / views) on the right.",
            custom=daily,
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": "/ctr/i"},
                    "properties": [
                        {"id": "unit", "value": "percentunit"},
                        {"id": "decimals", "value": 1},
                        {"id": "custom.axisPlacement", "value": "right"},
                        {"id": "custom.axisLabel", "value": "CTR"},
                        {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                    ],
                }
            ],
        ),
        _panel(
            2,
            "Messages by gender",
            "timeseries",
            [sql(panel_sql("activity/panel_messages_by_gender"), fmt=0)],
            12,
            9,
            datasource=CLICKHOUSE_ENV,
            time_from="30d",
            interval="1d",
            description="test.activity_daily, the gender slice: messages sent and their senders.",
            custom=daily,
        ),
        _panel(
            3,
            "Weekly sales by region",
            "timeseries",
            [sql(panel_sql("sales/panel_sales_by_region"), fmt=0)],
            0,
            17,
            datasource=CLICKHOUSE_ENV,
            time_from="1y",
            interval="1w",
            description="sales.sales_agg: the amount (left axis) and the number of sales (right axis) per region and week.",
            custom={"drawStyle": "bars", "fillOpacity": 60},
            overrides=[
                {
                    "matcher": {"id": "byRegexp", "options": "/^sales/"},
                    "properties": [
                        {"id": "custom.axisPlacement", "value": "right"},
                        {"id": "custom.axisLabel", "value": "sales"},
                        {"id": "custom.drawStyle", "value": "line"},
                    ],
                }
            ],
        ),
        _panel(
            4,
            "Prosthesis efficiency and usage",
            "timeseries",
            [sql(panel_sql("telemetry/panel_mart_efficiency"), fmt=0)],
            12,
            17,
            datasource=CLICKHOUSE_ENV,
            time_from="30d",
            interval="1d",
            description="bionicpro_reports.reports_data_mart: the mean efficiency score (0-100, right axis), usage hours and users.",
            custom=daily,
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "efficiency"},
                    "properties": [
                        {"id": "unit", "value": "none"},
                        {"id": "min", "value": 0},
                        {"id": "max", "value": 100},
                        {"id": "custom.axisPlacement", "value": "right"},
                        {"id": "custom.axisLabel", "value": "efficiency"},
                        {
                            "id": "thresholds",
                            "value": thresholds(("red", None), ("orange", 40), ("green", 60)),
                        },
                    ],
                },
                {
                    "matcher": {"id": "byName", "options": "hours"},
                    "properties": [{"id": "unit", "value": "h"}],
                },
            ],
        ),
    ]
    return _dashboard(
        "etl-business",
        "Business metrics",
        panels,
        ["business", "clickhouse"],
        "now-2d",
        business_variables(),
    )


DASHBOARDS = {
    "pipeline-health.json": pipeline_dashboard,
    "business-metrics.json": business_dashboard,
}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in DASHBOARDS:
        (OUT / name).write_text(render(name), encoding="utf-8")
        print(OUT / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
