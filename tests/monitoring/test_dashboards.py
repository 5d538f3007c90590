"""Dashboards, alert rules and Kibana objects against what can run here.

Grafana and Kibana cannot be installed here, so their contracts are tested: the committed
dashboards are this project's generator output with stable uids and provisioned datasources;
after real flows ran on the local stack and Prometheus scraped the Pushgateway, every PromQL query
of every panel and every alert rule is valid through Prometheus' HTTP API, and each panel that
should have data returns data; every ClickHouse panel's SQL runs on ClickHouse 18.16; the Kibana
saved objects reference the data view and only fields the logger writes. A real `luigi` command
logs JSON lines with ECS names and context."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import luigi
import pytest
import requests
import yaml

from config.settings import load_settings
from monitoring import dashboards
from monitoring.logs import INDEX_TEMPLATE, context, ecs_document

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"
# Panels that must return data once flows ran (the others: valid, data only after failures,
# alerts, dropped records or runs through luigid).
MUST_HAVE_DATA = {
    "Runs by flow and outcome",
    "Since last success",
    "Mean task duration",
    "Last run duration",
    "Rows per flow and dataset",
    "Rows in total",
    "Files by flag status",
}
MACROS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def promql(expr: str) -> str:
    for macro, value in MACROS.items():
        expr = expr.replace(macro, value)
    return expr


def panels(name: str) -> list[dict[str, Any]]:
    return json.loads((MONITORING / "grafana" / "dashboards" / name).read_text())["panels"]


def test_the_committed_dashboards_are_the_generated_ones() -> None:
    for name in dashboards.DASHBOARDS:
        committed = (MONITORING / "grafana" / "dashboards" / name).read_text()
        assert committed == dashboards.render(name), f"{name}: run python -m monitoring.dashboards"
        assert "__inputs" not in committed and "${DS_" not in committed


def test_dashboards_have_stable_uids_and_provisioned_datasources() -> None:
    provisioned = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text()
    )
    uids = {d["uid"] for d in provisioned["datasources"]}
    seen = set()
    for name in dashboards.DASHBOARDS:
        board = json.loads((MONITORING / "grafana" / "dashboards" / name).read_text())
        assert board["uid"] in {"etl-pipeline", "etl-business"} and board["uid"] not in seen
        seen.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] in uids
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in uids


def test_kibana_objects_reference_the_data_view_and_fields_the_logger_writes() -> None:
    objects = [
        json.loads(line)
        for line in (MONITORING / "kibana" / "saved-objects.ndjson").read_text().splitlines()
    ]
    view = next(o for o in objects if o["type"] == "index-pattern")
    assert view["attributes"]["title"] == INDEX_TEMPLATE["index_patterns"][0]
    assert view["attributes"]["timeFieldName"] == "@timestamp"
    import logging

    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, None)
    record.exc_text = "Traceback...\nValueError: bad"
    with context(flow="sales", task_family="IngestFiles", task_id="t1", file_id="f1"):
        written = set(ecs_document(record, "luigi"))
    mapped = set(INDEX_TEMPLATE["template"]["mappings"]["properties"])
    searches = [o for o in objects if o["type"] == "search"]
    assert {s["attributes"]["title"] for s in searches} >= {"Errors by flow", "One file's story"}
    for search in searches:
        assert search["references"] == [
            {
                "name": "kibanaSavedObjectMeta.searchSourceJSON.index",
                "type": "index-pattern",
                "id": view["id"],
            }
        ]
        source = json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        fields = set(re.findall(r"([a-z_.@]+) :", source["query"]["query"]))
        for field in fields | set(search["attributes"]["columns"]):
            assert field in written or field in mapped, f"{search['id']}: {field} is never written"


def test_a_luigi_command_logs_json_with_ecs_names_and_context(stack: None, runtime: Path) -> None:
    env = {
        **os.environ,
        "LUIGI_CONFIG_PATH": str(ROOT / "luigi.cfg"),
        "PIPELINE_RUNTIME_DIR": str(runtime),
    }
    inbox = runtime / "inbox"
    header = "sale_id,customer_id,product_id,quantity,sale_date,sale_amount,region\n"
    (inbox / "sales_2024_w10_north.csv").write_text(
        header + "987654321,1,1,1,2024-03-04,9.99,North\n"
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "luigi"),
            "--module",
            "pipeline.inbox",
            "inbox.ProcessInbox",
            "--min-age-s",
            "0",
            "--local-scheduler",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [json.loads(line) for line in (runtime / "logs" / "luigi.log").read_text().splitlines()]
    assert lines and all(
        {"@timestamp", "log.level", "log.logger", "message", "service.name"} <= set(x)
        for x in lines
    )
    assert any(
        x.get("labels.task_family") == "inbox.ProcessInbox" and x.get("labels.flow") == "inbox"
        for x in lines
    )
    stdout_lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert stdout_lines, "stdout carries the same JSON lines"


def _run_flows(runtime: Path) -> None:
    from demo.simulator import SimSpec, write_day
    from pipeline.activity.tasks import ActivityDaily
    from pipeline.inbox.tasks import ProcessInbox
    from pipeline.systems.postgres import ensure_marker_table, transaction
    from pipeline.systems.redis import connect

    connect(load_settings().redis).flushdb()  # the tests' db: flags and metrics of this run only
    with transaction() as cur:
        cur.execute("DROP TABLE IF EXISTS sales.sales")
        ensure_marker_table(cur)
        cur.execute("DELETE FROM ops.load_markers WHERE target_table = 'sales.sales'")
    inbox = load_settings().paths.inbox
    inbox.mkdir(parents=True, exist_ok=True)
    header = "sale_id,customer_id,product_id,quantity,sale_date,sale_amount,region\n"
    good = "".join(f"{i},1,1,1,2024-01-02,9.99,North\n" for i in range(1, 51))
    (inbox / "sales_2024_w01_north.csv").write_text(
        header + good + "51,1,1,0,2024-01-02,1.00,North\n"
    )
    (inbox / "sales_2024_w01_south.csv").write_text("not,the,header\n1,2,3\n")
    old = time.time() - 120
    for path in inbox.iterdir():
        os.utime(path, (old, old))
    day = dt.date(2024, 5, 20)
    write_day(
        day,
        SimSpec(
            seed=3, start=day, base_users=500, feed_actions_per_day=5_000, messages_per_day=500
        ),
    )
    assert luigi.build(
        [ProcessInbox(min_age_s=0), ActivityDaily(date=day)],
        local_scheduler=True,
        workers=2,
        log_level="WARNING",
    )


def _query(expr: str, prometheus: str) -> dict[str, Any]:
    response = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=30)
    payload = response.json()
    assert response.status_code == 200 and payload["status"] == "success", f"{expr}: {payload}"
    return payload["data"]


@pytest.mark.integration
def test_every_query_of_every_panel_and_rule_after_real_flows(stack: None, runtime: Path) -> None:
    _run_flows(runtime)
    prometheus = load_settings().monitoring.prometheus_url
    deadline = time.monotonic() + 60
    while not _query('pipeline_rows_total{instance="tests"}', prometheus)["result"]:
        assert time.monotonic() < deadline, "Prometheus never scraped the pushed metrics"
        time.sleep(2)
    time.sleep(12)  # two more scrapes: rates and increases need two samples
    empty = []
    for panel in panels("pipeline-health.json"):
        for target in panel["targets"]:
            data = _query(promql(target["expr"]), prometheus)
            if panel["title"] in MUST_HAVE_DATA and not data["result"]:
                empty.append(f"{panel['title']}: {target['expr']}")
    assert not empty, empty
    requests.post(f"{prometheus}/-/reload", timeout=30)  # the rule files as they are now
    rules = yaml.safe_load((MONITORING / "prometheus" / "rules" / "pipeline.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            _query(rule["expr"], prometheus)
    loaded = requests.get(f"{prometheus}/api/v1/rules", timeout=30).json()["data"]["groups"]
    assert {r["name"] for g in loaded for r in g["rules"]} >= {
        "FlowLate",
        "TaskFailures",
        "FilesStuck",
        "FilesFailed",
        "LogRecordsDropped",
    }
    files = _query('sum by (status) (pipeline_files{instance="tests",dataset="sales"})', prometheus)
    by_status = {r["metric"]["status"]: float(r["value"][1]) for r in files["result"]}
    assert by_status["archived"] == 1 and by_status["quarantined"] == 1
    rows = _query('sum by (kind) (pipeline_rows_total{instance="tests",flow="inbox"})', prometheus)
    assert {r["metric"]["kind"]: float(r["value"][1]) for r in rows["result"]} == {
        "read": 51,
        "written": 50,
        "rejected": 1,
    }


@pytest.mark.integration
def test_every_clickhouse_panel_runs_on_clickhouse(stack: None) -> None:
    from pipeline.systems.clickhouse import ClickHouse

    ch = ClickHouse()
    for statement in (
        "activity/create_activity_daily",
        "sales/create_sales_agg",
        "telemetry/create_mart",
        "ops/create_alerts",
    ):
        ch.execute(statement)
    prefix = ch.settings.database_prefix
    for panel in panels("business-metrics.json"):
        for target in panel["targets"]:
            sql = re.sub(
                r"\b(test|sales|bionicpro_reports|ops)\.", rf"{prefix}\1.", target["rawSql"]
            )
            response = requests.post(ch.settings.http_url, data=sql.encode(), timeout=30)
            assert response.status_code == 200, f"{panel['title']}: {response.text[:300]}"
