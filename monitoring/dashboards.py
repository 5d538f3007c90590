"""The Grafana dashboards, written as JSON under ``monitoring/grafana/dashboards`` (provisioned
from files by the compose stack). ``python -m monitoring.dashboards`` regenerates them; a test
holds the committed files equal to this module's output and runs every query.

- ``etl-pipeline`` (Pipeline health), Prometheus: runs and failures per flow, durations,
  freshness per flow, rows per flow and dataset, files by flag status, alerts raised, log records
  dropped, luigid's own task counters.
- ``etl-business`` (Business metrics), ClickHouse: activity (views, likes, CTR by os; messages by
  gender), weekly sales by region, the telemetry mart (efficiency, usage), alerts sent. Each
  panel's SQL is a named statement of the flow it shows (``pipeline/<flow>/sql/clickhouse/
  panel_*.sql``), which the dialect check runs on both ClickHouse engines.

Stable uids, datasources referenced by their provisioned uids (``prometheus``, ``clickhouse``),
no ``__inputs`` placeholders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from config.settings import CLICKHOUSE_DATABASES
from pipeline.core.sql import load, render_text

OUT = Path(__file__).resolve().parent / "grafana" / "dashboards"
PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}
CLICKHOUSE = {"type": "grafana-clickhouse-datasource", "uid": "clickhouse"}


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
) -> dict[str, Any]:
    return {
        "id": id_,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": datasource,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": targets,
    }


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
        "datasource": CLICKHOUSE,
        "refId": ref,
        "rawSql": query,
        "format": fmt,
        "editorType": "sql",
    }


def _dashboard(
    uid: str, title: str, panels: list[dict[str, Any]], tags: list[str]
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
        "time": {"from": "now-24h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


def pipeline_dashboard() -> dict[str, Any]:
    panels = [
        _panel(
            1,
            "Runs by flow and outcome",
            "timeseries",
            [
                prom(
                    "sum by (flow, outcome) (increase(pipeline_task_runs_total[$__rate_interval]))",
                    "{{flow}} {{outcome}}",
                ),
            ],
            0,
            0,
            description="Task runs ended per interval (success, failure, broken, timeout, process_failure).",
        ),
        _panel(
            2,
            "Failed runs (24 h)",
            "stat",
            [
                prom(
                    'sum by (flow) (increase(pipeline_task_runs_total{outcome!="success"}[24h]))',
                    "{{flow}}",
                    instant=True,
                ),
            ],
            12,
            0,
            w=6,
            description="Runs that did not succeed in the last day, per flow.",
        ),
        _panel(
            3,
            "Since last success",
            "stat",
            [
                prom(
                    "time() - max by (flow) (pipeline_flow_last_success_timestamp_seconds)",
                    "{{flow}}",
                    instant=True,
                ),
            ],
            18,
            0,
            w=6,
            unit="s",
            description="Freshness: how long ago each flow last succeeded (FlowLate fires past its schedule plus margin).",
        ),
        _panel(
            4,
            "Mean task duration",
            "bargauge",
            [
                prom(
                    "sum by (task_family) (pipeline_task_seconds_total) / sum by (task_family) (pipeline_task_timed_runs_total)",
                    "{{task_family}}",
                    instant=True,
                ),
            ],
            0,
            8,
            unit="s",
        ),
        _panel(
            5,
            "Last run duration",
            "timeseries",
            [
                prom(
                    "max by (flow, task_family) (pipeline_task_last_duration_seconds)",
                    "{{flow}} {{task_family}}",
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
                    "sum by (flow, dataset, kind) (increase(pipeline_rows_total[$__rate_interval]))",
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
                    "sum by (flow, dataset, kind) (pipeline_rows_total)",
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
                    "sum by (dataset, status) (pipeline_files)",
                    "{{dataset}} {{status}}",
                    instant=True,
                ),
            ],
            0,
            24,
            description="Files per status from the flag ledger (FilesStuck / FilesFailed alert on these).",
        ),
        _panel(
            9,
            "Alerts raised",
            "timeseries",
            [
                prom(
                    "sum by (metric, kind) (increase(pipeline_alerts_total[$__rate_interval]))",
                    "{{metric}} {{kind}}",
                ),
            ],
            12,
            24,
            description="Anomaly alert, repeat and recovery messages sent.",
        ),
        _panel(
            10,
            "Log records dropped",
            "stat",
            [
                prom(
                    "sum by (service) (increase(pipeline_log_records_dropped_total[24h]))",
                    "{{service}}",
                    instant=True,
                ),
            ],
            0,
            32,
            w=6,
            description="Records the Elasticsearch queue dropped (ES slow or down); the files in var/logs/ keep them.",
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
            6,
            32,
            w=18,
            description="The central scheduler's own counters (runs through luigid only).",
        ),
    ]
    return _dashboard("etl-pipeline", "Pipeline health", panels, ["pipeline", "luigi"])


# Databases by their logical names; a deployment with a prefix edits the dashboards' SQL.
LOGICAL_DATABASES = {database: database for database in CLICKHOUSE_DATABASES}


def panel_sql(name: str) -> str:
    """A panel's query: the named ClickHouse statement with the logical database names, on one
    line (as Grafana's query editor shows it)."""
    text = render_text(name, load(name).text, LOGICAL_DATABASES)
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def business_dashboard() -> dict[str, Any]:
    panels = [
        _panel(
            1,
            "Views, likes and CTR by os",
            "timeseries",
            [sql(panel_sql("activity/panel_views_ctr_by_os"), fmt=0)],
            0,
            0,
            datasource=CLICKHOUSE,
            description="test.activity_daily, the os slice.",
        ),
        _panel(
            2,
            "Messages by gender",
            "timeseries",
            [sql(panel_sql("activity/panel_messages_by_gender"), fmt=0)],
            12,
            0,
            datasource=CLICKHOUSE,
        ),
        _panel(
            3,
            "Weekly sales by region",
            "timeseries",
            [sql(panel_sql("sales/panel_sales_by_region"), fmt=0)],
            0,
            8,
            datasource=CLICKHOUSE,
            description="sales.sales_agg (seed 004).",
        ),
        _panel(
            4,
            "Prosthesis efficiency and usage",
            "timeseries",
            [sql(panel_sql("telemetry/panel_mart_efficiency"), fmt=0)],
            12,
            8,
            datasource=CLICKHOUSE,
            description="bionicpro_reports.reports_data_mart (seed 003).",
        ),
        _panel(
            5,
            "Anomaly alerts sent",
            "table",
            [sql(panel_sql("alerts/panel_alerts_sent"))],
            0,
            16,
            w=24,
            datasource=CLICKHOUSE,
            description="ops.alerts: every alert, repeat and recovery.",
        ),
    ]
    return _dashboard("etl-business", "Business metrics", panels, ["business", "clickhouse"])


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
