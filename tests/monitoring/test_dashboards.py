"""Dashboards, alert rules and Kibana objects against what can run here.

Grafana and Kibana cannot be installed here, so their contracts are tested: the committed
dashboards are this project's generator output with stable uids and provisioned datasources;
after real flows ran on the local stack and Prometheus scraped the Pushgateway, every PromQL query
of every panel and every alert rule is valid through Prometheus' HTTP API, and each panel that
should have data returns data; every ClickHouse panel's SQL runs on ClickHouse 18.16; the Kibana
saved objects reference the data view and only fields the logger writes. A real `luigi` command
logs JSON lines with ECS names and context to its log file."""

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
from monitoring.logs import context, ecs_document
from monitoring.shipper import INDEX_TEMPLATE

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
    "Files stuck",
    "Files failed or quarantined",
    "Log records dropped",
}
# Grafana's macros and the board's variable, as Grafana fills them (the tests' environment).
MACROS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$env": "tests"}


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
        variables = {v["name"]: v for v in board["templating"]["list"]}
        chosen = {}
        if variables["env"]["type"] == "datasource":  # the default is a provisioned one
            chosen["${env}"] = variables["env"]["current"]["value"]
            assert chosen["${env}"] in uids
        for panel in board["panels"]:
            assert chosen.get(panel["datasource"]["uid"], panel["datasource"]["uid"]) in uids
            for target in panel["targets"]:
                uid = target["datasource"]["uid"]
                assert chosen.get(uid, uid) in uids


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
    assert lines[-1]["event.id"] and len({x["event.id"] for x in lines}) == len(lines)
    assert not [line for line in result.stdout.splitlines() if line.startswith("{")]  # people's


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
    instance = load_settings().monitoring.metrics_instance  # this session's Pushgateway group
    while not _query(f'pipeline_rows_total{{instance="{instance}"}}', prometheus)["result"]:
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
    files = _query(
        f'sum by (status) (pipeline_files{{instance="{instance}",dataset="sales"}})', prometheus
    )
    by_status = {r["metric"]["status"]: float(r["value"][1]) for r in files["result"]}
    assert by_status["archived"] == 1 and by_status["quarantined"] == 1
    rows = _query(
        f'sum by (kind) (pipeline_rows_total{{instance="{instance}",flow="inbox"}})', prometheus
    )
    assert {r["metric"]["kind"]: float(r["value"][1]) for r in rows["result"]} == {
        "read": 51,
        "written": 50,
        "rejected": 1,
    }


def grafana_sql(query: str, metric: str = "views", slice_: str = "all", **window: str) -> str:
    """A panel's SQL as Grafana sends it: variables filled, macros expanded."""
    query = query.replace("${metric:sqlstring}", f"'{metric}'")
    query = query.replace("${slice:sqlstring}", f"'{slice_}'")
    return dashboards.expand_macros(query, **window)


def business() -> dict[str, Any]:
    return json.loads((MONITORING / "grafana" / "dashboards" / "business-metrics.json").read_text())


def test_the_alert_links_panel_shows_the_metric_and_slice_the_variables_name() -> None:
    board = business()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert set(variables) == {"env", "metric", "slice"}
    metrics = [o["value"] for o in variables["metric"]["options"]]
    import tomllib

    configured = tomllib.loads((ROOT / "config" / "alerts.toml").read_text())["metrics"]
    assert set(configured) <= set(metrics)  # every metric the checks alert on
    assert (
        variables["slice"]["allowCustomValue"] and variables["slice"]["current"]["value"] == "all"
    )
    panel = next(p for p in board["panels"] if p["id"] == dashboards.METRIC_PANEL_ID == 10)
    assert "$metric" in panel["title"] and "$slice" in panel["title"]
    assert panel["interval"] == "15m" and "timeFrom" not in panel  # the link's from/to apply
    query = panel["targets"][0]["rawSql"]
    assert "${metric:sqlstring}" in query and "${slice:sqlstring}" in query
    assert "toStartOfFifteenMinutes" in query and "$__timeFilter(time)" in query


def test_panels_fit_their_data_with_units_thresholds_and_the_environment() -> None:
    board = business()
    assert board["time"]["from"] == "now-2d"
    for panel in board["panels"]:
        query = panel["targets"][0]["rawSql"]
        assert "$__timeFilter(" in query and "today()" not in query, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
    by_title = {p["title"]: p for p in board["panels"]}
    views = by_title["Views, likes and CTR by os"]
    assert views["timeFrom"] == "30d" and views["interval"] == "1d"
    ctr = views["fieldConfig"]["overrides"][0]
    assert ctr["matcher"] == {"id": "byRegexp", "options": "/ctr/i"}
    properties = {x["id"]: x["value"] for x in ctr["properties"]}
    assert properties["custom.axisPlacement"] == "right" and properties["unit"] == "percentunit"
    assert by_title["Weekly sales by region"]["timeFrom"] == "1y"
    health = json.loads(
        (MONITORING / "grafana" / "dashboards" / "pipeline-health.json").read_text()
    )
    assert health["time"]["from"] == "now-24h"
    assert [v["name"] for v in health["templating"]["list"]] == ["env"]
    titles = {p["title"]: p for p in health["panels"]}
    for title in (
        "Files by flag status",
        "Files stuck",
        "Files failed or quarantined",
        "Runs by flow and outcome",
        "Mean task duration",
        "Log records dropped",
    ):
        assert title in titles
    for panel in health["panels"]:
        for target in panel["targets"]:
            if "pipeline_" in target["expr"]:
                assert 'instance=~"$env"' in target["expr"], target["expr"]
        if panel["type"] == "stat":
            assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"], panel["title"]
    assert titles["Mean task duration"]["fieldConfig"]["defaults"]["unit"] == "s"


@pytest.mark.integration
def test_every_clickhouse_panel_runs_on_clickhouse(stack: None) -> None:
    from pipeline.systems.clickhouse import ClickHouse

    ch = ClickHouse()
    for statement in (
        "activity/create_activity_daily",
        "activity/create_feed_actions",
        "activity/create_message_actions",
        "sales/create_sales_agg",
        "telemetry/create_mart",
        "ops/create_alerts",
    ):
        ch.execute(statement)
    prefix = ch.settings.database_prefix
    queries = [
        (p["title"], t["rawSql"]) for p in panels("business-metrics.json") for t in p["targets"]
    ]
    queries += [
        (v["name"], v["query"]) for v in business()["templating"]["list"] if v["type"] == "query"
    ]
    for title, query in queries:
        sql = re.sub(
            r"\b(simulator|test|sales|bionicpro_reports|ops)\.", rf"{prefix}\1.", grafana_sql(query)
        )
        response = requests.post(ch.settings.http_url, data=sql.encode(), timeout=30)
        assert response.status_code == 200, f"{title}: {response.text[:300]}"


@pytest.mark.integration
def test_the_metric_panel_shows_what_the_alert_checks_compute(stack: None) -> None:
    import math

    import pandas as pd

    from demo.simulator import SimSpec, write_day
    from pipeline.alerts.tasks import metric_frames
    from pipeline.systems.clickhouse import ClickHouse

    day = dt.date(2024, 5, 22)
    write_day(day, SimSpec(seed=7, start=day, base_users=300, feed_actions_per_day=3_000))
    start, end = pd.Timestamp(day), pd.Timestamp(day + dt.timedelta(days=1))
    checks = metric_frames(ClickHouse(), start, end, ("os",))
    ch = ClickHouse()
    query = next(
        p["targets"][0]["rawSql"]
        for p in panels("business-metrics.json")
        if p["id"] == dashboards.METRIC_PANEL_ID
    )
    prefix = ch.settings.database_prefix
    window = {
        "start": f"{start:%Y-%m-%d %H:%M:%S}",
        "end": f"{end - pd.Timedelta(seconds=1):%Y-%m-%d %H:%M:%S}",
    }
    compared = 0
    for metric in dashboards.METRICS:
        for slice_ in ("all", "os=Android"):
            sql = re.sub(
                r"\bsimulator\.",
                f"{prefix}simulator.",
                grafana_sql(query, metric, slice_, **window),
            )
            text = requests.post(
                ch.settings.http_url, data=(sql + " FORMAT JSONCompact").encode(), timeout=30
            ).json()["data"]
            panel = {pd.Timestamp(t): v for t, v in text}
            expected = checks[(checks["metric"] == metric) & (checks["slice"] == slice_)]
            assert len(expected) > 20, (metric, slice_)
            assert set(panel) == set(expected["slot"]), (metric, slice_)
            for slot, value in zip(expected["slot"], expected["value"], strict=True):
                got = panel[slot]
                if value != value:  # NaN: no views in the slot
                    assert got is None or (isinstance(got, float) and math.isnan(got))
                else:
                    assert math.isclose(float(got), float(value), rel_tol=1e-9), (metric, slot)
                compared += 1
    assert compared > 500
