"""``make demo``: the main job on the local stack, then where to look.

Generates the data, then runs every flow through the central scheduler (so the runs show in the
luigid UI), one flow after the other with two workers each: the activity ETL for eight days of
feed and messenger events, yesterday's morning reports, the 15-minute alert checks replayed over
yesterday afternoon (the events carry one incident: views on Android drop by 60% from 14:00 to
15:30 UTC), the sales year (a million orders generated into the inbox, then the weekly flow for
every week) and the telemetry mart for the last three days (customers from the CRM stand-in,
which the demo starts when nothing answers at its URL).

The console gets one line per flow and, while one runs, how far it is; every record of every
task is in ``var/logs/demo.log`` (JSON). It ends with where to look.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlparse

import luigi

from config.settings import Settings, load_settings
from demo.crm_service import CrmData, customers, serve
from demo.sales_generator import SalesSpec, write_year
from demo.simulator import Incident, SimSpec
from demo.simulator import write_day as write_events
from demo.telemetry_generator import TelemetrySpec, write_day
from monitoring.logs import setup_logging
from pipeline.activity.tasks import ActivityDaily
from pipeline.alerts.tasks import AlertReplay
from pipeline.reports.tasks import MorningReports
from pipeline.sales.tasks import SalesBackfill
from pipeline.systems import postgres
from pipeline.systems.clickhouse import ClickHouse
from pipeline.systems.postgres import transaction
from pipeline.telemetry.tasks import TelemetryMart
from stack.servers import url_port

WORKERS = 2
T = TypeVar("T")
PROGRESS_EVERY_S = 15.0


def main() -> int:
    settings = load_settings()
    settings.paths.ensure()
    # The task lines and Luigi's summary go to the log file only: the demo says it shorter.
    setup_logging("demo", console_info=False, summary=False, tasks=False)
    luigi.configuration.get_config().set("core", "no_configure_logging", "true")
    day = dt.date.today() - dt.timedelta(days=1)
    print("Demo on the local stack: generated data through every flow.\n")
    print("Generating data")
    spec = SalesSpec()
    made = timed(lambda: write_year(settings.paths.inbox, spec))
    print(
        f"  sales       {made[0]['orders_generated']:,} orders of a year in"
        f" {made[0]['files']} weekly files per region, into the inbox{made[1]}"
    )
    mart_days = [day - dt.timedelta(days=i) for i in (2, 1, 0)]
    crm = start_crm(settings.crm.url, settings.crm.token)
    telemetry = TelemetrySpec()
    rows = timed(lambda: [write_day(d, telemetry) for d in mart_days])
    print(
        f"  telemetry   {len(mart_days)} days of device events and usage sessions in"
        f" PostgreSQL, {sum(sum(r.values()) for r in rows[0]):,} rows{rows[1]}"
    )
    print(f"  CRM         {crm}")
    app_days = [day - dt.timedelta(days=i) for i in range(7, -1, -1)]
    incident_start = dt.datetime.combine(day, dt.time(14, 0))
    incident = Incident(
        "views",
        incident_start,
        incident_start + dt.timedelta(minutes=90),
        0.4,
        (("os", "Android"),),
    )
    events = SimSpec(start=app_days[0], incidents=(incident,))
    counts = timed(lambda: [write_events(d, events) for d in app_days])
    feed = sum(c.get("feed_actions", 0) for c in counts[0])
    messages = sum(c.get("message_actions", 0) for c in counts[0])
    print(
        f"  app events  {len(app_days)} days, {feed:,} feed actions and {messages:,} messages in"
        f" ClickHouse{counts[1]}"
    )
    print("              an incident: views on Android -60% yesterday 14:00-15:30 UTC")
    replay = (incident_start - dt.timedelta(hours=3), incident_start + dt.timedelta(hours=4))
    last = spec.week_start(spec.weeks)
    flows: list[tuple[str, str, list[luigi.Task]]] = [
        (
            "activity",
            f"{len(app_days)} days into test.activity_daily",
            [ActivityDaily(date=d) for d in app_days],
        ),
        (
            "reports",
            f"the reports of {day} into var/reports/",
            [MorningReports(date=day)],
        ),
        (
            "alerts",
            f"15-minute checks {replay[0]:%H:%M}-{replay[1]:%H:%M} of {day}",
            [AlertReplay(start=replay[0], end=replay[1])],
        ),
        (
            "sales",
            f"{spec.weeks} weeks through the inbox into sales.sales_agg",
            [SalesBackfill(start=spec.first_monday, end=last)],
        ),
        (
            "telemetry",
            f"{len(mart_days)} days into the reports_data_mart",
            [TelemetryMart(date=d) for d in mart_days],
        ),
    ]
    url = settings.monitoring.luigid_url
    print(f"\nRunning the flows through luigid ({url}), {WORKERS} workers each")
    failed = [name for name, what, tasks in flows if not run_flow(settings, name, what, tasks)]
    if failed:
        print(
            f"\nThe demo failed in {', '.join(failed)}: the task lines above name the error;"
            f" every record is in {settings.paths.logs / 'demo.log'}.",
            file=sys.stderr,
        )
        return 1
    where_to_look(settings, day, last, replay, crm)
    return 0


def timed(make: Callable[[], T]) -> tuple[T, str]:
    """What ``make`` returns, and how long it took (" (6.1s)")."""
    began = time.monotonic()
    result = make()
    return result, f" ({time.monotonic() - began:.1f}s)"


def tasks_done() -> int:
    """Successful task runs so far (the metrics' counters: the forked workers count too)."""
    from pipeline.systems.redis import client

    try:
        runs = client().hgetall("metrics:runs")
    except Exception:
        return 0
    return sum(int(v) for k, v in runs.items() if k.decode().endswith("|success"))


def run_flow(settings: Settings, name: str, what: str, tasks: list[luigi.Task]) -> bool:
    """One flow's build, with a progress line while it runs and one line when it ends."""
    began, before = time.monotonic(), tasks_done()
    stop = threading.Event()
    tty = sys.stdout.isatty()

    def progress() -> None:
        while not stop.wait(1.0 if tty else PROGRESS_EVERY_S):
            line = (
                f"  {name:<10}  ... {time.monotonic() - began:.0f}s,"
                f" {tasks_done() - before} tasks done"
            )
            print(f"\r{line}" if tty else line, end="" if tty else "\n", flush=True)

    ticker = threading.Thread(target=progress, daemon=True)
    ticker.start()
    try:
        result = luigi.build(
            tasks,
            workers=WORKERS,
            scheduler_host="127.0.0.1",
            scheduler_port=url_port(settings.monitoring.luigid_url),
            detailed_summary=True,
        )
    finally:
        stop.set()
        ticker.join()
    ok = result.status.name in ("SUCCESS", "SUCCESS_WITH_RETRY")
    ran = tasks_done() - before
    took = time.monotonic() - began
    clear = "\r\033[K" if tty else ""
    count = f"{ran} task" + ("" if ran == 1 else "s") if ran else "done before"
    print(f"{clear}  {name:<10}  {what:<54} {count:>9} {took:6.1f}s  {'ok' if ok else 'FAILED'}")
    if not ok:
        print(result.summary_text, file=sys.stderr)
    return ok


def where_to_look(
    settings: Settings,
    day: dt.date,
    last: dt.date,
    replay: tuple[dt.datetime, dt.datetime],
    crm: str,
) -> None:
    pg, monitoring, ch = settings.postgres, settings.monitoring, ClickHouse()
    db = settings.clickhouse.database
    pad = " " * 17
    with transaction() as cur:
        postgres.run(cur, "demo/sales_counts")
        sales_rows, agg_rows, agg_weeks = cur.fetchone()  # type: ignore[misc]
    regions = ch.query("sales/week_summary", week=last)
    counts = ch.query("telemetry/day_counts", day=day)[0]
    top = ch.query("telemetry/example_top_efficiency", today=day + dt.timedelta(days=1))[:3]
    activity = [
        r for r in ch.query("activity/day_rows", day=day) if r["dimension"] == "os" and r["views"]
    ]
    alerts = ch.query(
        "ops/alerts_between",
        start=f"{replay[0]:%Y-%m-%d %H:%M:%S}",
        end=f"{replay[1]:%Y-%m-%d %H:%M:%S}",
    )
    lines = [
        "",
        "Where to look",
        f"  luigid UI      {monitoring.luigid_url}   every run above, grouped by flow",
        f"  Prometheus     {monitoring.prometheus_url}/alerts   the alert rules",
        f"  Alertmanager   {monitoring.alertmanager_url}   firing alerts, sent to Telegram",
        f"  Logs           {settings.paths.logs / 'demo.log'}   JSON, one record per line",
        f"  PostgreSQL     psql -h {pg.host} -p {pg.port} -U {pg.user} {pg.database}",
        f"{pad}sales.sales {sales_rows:,} rows; sales.sales_agg {agg_rows:,} rows, {agg_weeks}"
        " weeks",
        f"  ClickHouse     clickhouse-client --port {settings.clickhouse.port}",
        f"{pad}{db('sales')}.sales_agg, week {last}, sales by region:",
        f"{pad}  " + ", ".join(f"{r['region']} {r['sales']:,}" for r in regions),
        f"{pad}{db('bionicpro_reports')}.reports_data_mart, {day}: {counts['rows']} rows,"
        f" {counts['unknown_to_crm']} unknown to the CRM",
        f"{pad}best efficiency, last 7 days: "
        + ", ".join(f"user {r['user_id']} {r['efficiency']:.1f}" for r in top),
        f"{pad}{db('test')}.activity_daily, {day}, views by os: "
        + ", ".join(f"{r['dimension_value']} {r['views']:,}" for r in activity),
        f"  Alerts         {db('ops')}.alerts: {len(alerts)} message(s) on {day}, the first:",
        *(
            f"{pad}{str(row['slot'])[11:16]} {row['kind']:<8} {row['metric']:<16}"
            f" {row['slice']:<12} {row['change']:+.0%}"
            for row in alerts[:4]
        ),
        f"  Reports        {settings.paths.reports / day.isoformat()}   text + picture",
        f"  Notifications  {settings.paths.outbox}   what Telegram would have received",
        f"  File flags     {settings.paths.flags}   .venv/bin/flags counts",
        "  Dashboards     monitoring/grafana/dashboards/   (Grafana in the compose stack)",
    ]
    print("\n".join(lines))


def start_crm(url: str, token: str) -> str:
    """The CRM stand-in in a background thread, unless something already answers at ``url``."""
    import requests

    try:
        requests.get(url.rstrip("/") + "/health", timeout=2)
        return f"the one answering at {url}"
    except requests.RequestException:
        pass
    where = urlparse(url)
    data = CrmData(customers(TelemetrySpec.users - 5), token=token)
    serve(where.hostname or "127.0.0.1", where.port or 80, data)
    return f"the demo's stand-in, started at {url}"


if __name__ == "__main__":
    raise SystemExit(main())
