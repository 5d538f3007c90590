"""``make demo``: the main job on the local stack, then where to look.

Runs through the central scheduler (so the runs show in the luigid UI): the sales year
(generated into the inbox, then the weekly flow for every week), the telemetry mart for the
last three days (generated telemetry, customers from the CRM stand-in, which the demo starts
when nothing answers at its URL), and the app's flows: eight days of feed and messenger events
with one incident (views on Android drop by 60% yesterday 14:00-15:30 UTC), the activity ETL
for those days, yesterday's morning reports and the 15-minute alert checks replayed over
yesterday afternoon.
"""

from __future__ import annotations

import datetime as dt
import sys
from urllib.parse import urlparse

import luigi

from config.settings import load_settings
from demo.crm_service import CrmData, customers, serve
from demo.sales_generator import SalesSpec, write_year
from demo.simulator import Incident, SimSpec
from demo.simulator import write_day as write_events
from demo.telemetry_generator import TelemetrySpec, write_day
from pipeline.activity.tasks import ActivityDaily
from pipeline.alerts.tasks import AlertReplay
from pipeline.reports.tasks import MorningReports
from pipeline.sales.tasks import SalesBackfill
from pipeline.systems import postgres
from pipeline.systems.clickhouse import ClickHouse
from pipeline.systems.postgres import transaction
from pipeline.telemetry.tasks import TelemetryMart
from stack.servers import url_port


def main() -> int:
    settings = load_settings()
    settings.paths.ensure()
    day = dt.date.today() - dt.timedelta(days=1)
    spec = SalesSpec()
    print("generating a year of sales (1,000,000 orders) into the inbox ...", flush=True)
    print(f"  {write_year(settings.paths.inbox, spec)}")
    last = spec.week_start(spec.weeks)
    mart_days = [day - dt.timedelta(days=i) for i in (2, 1, 0)]
    crm = start_crm(settings.crm.url, settings.crm.token)
    telemetry = TelemetrySpec()
    for mart_day in mart_days:
        print(f"telemetry for {mart_day}: {write_day(mart_day, telemetry)}", flush=True)
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
    for app_day in app_days:
        print(
            f"feed and messenger events for {app_day}: {write_events(app_day, events)}", flush=True
        )
    replay = (incident_start - dt.timedelta(hours=3), incident_start + dt.timedelta(hours=4))
    result = luigi.build(
        [
            *(ActivityDaily(date=d) for d in app_days),
            MorningReports(date=day),
            AlertReplay(start=replay[0], end=replay[1]),
            SalesBackfill(start=spec.first_monday, end=last),
            *(TelemetryMart(date=d) for d in mart_days),
        ],
        workers=2,
        scheduler_host="127.0.0.1",
        scheduler_port=url_port(settings.monitoring.luigid_url),
        detailed_summary=True,
    )
    print(result.summary_text)
    if result.status.name not in ("SUCCESS", "SUCCESS_WITH_RETRY"):
        print(f"demo failed: {result.status.name}", file=sys.stderr)
        return 1
    pg = settings.postgres
    print("\nWhere to look:")
    print(f"  luigid UI      {settings.monitoring.luigid_url}/static/visualiser/index.html")
    print(f"  Prometheus     {settings.monitoring.prometheus_url}/targets")
    print(f"  PostgreSQL     psql -h {pg.host} -p {pg.port} -U {pg.user} {pg.database}")
    print(f"  ClickHouse     clickhouse-client --port {settings.clickhouse.port}")
    with transaction() as cur:
        postgres.run(cur, "demo/sales_counts")
        sales_rows, agg_rows, agg_weeks = cur.fetchone()  # type: ignore[misc]
    print(
        f"  PostgreSQL     sales.sales: {sales_rows:,} rows; sales.sales_agg: {agg_rows:,} rows"
        f" over {agg_weeks} weeks"
    )
    ch_weeks = ClickHouse().query("sales/week_summary", week=last)
    print(f"  ClickHouse     {settings.clickhouse.database('sales')}.sales_agg, week {last}:")
    for row in ch_weeks:
        print(f"{'':17}{row['region']:<6} sales={row['sales']:<6} amount={row['amount']:.2f}")
    mart = f"{settings.clickhouse.database('bionicpro_reports')}.reports_data_mart"
    counts = ClickHouse().query("telemetry/day_counts", day=day)[0]
    print(
        f"  ClickHouse     {mart}, {day}: {counts['rows']} rows, {counts['users']} users,"
        f" {counts['unknown_to_crm']} unknown to the CRM{crm}"
    )
    print(f"{'':17}the requirement's top-efficiency query, last 7 days (emails left out here):")
    top = ClickHouse().query("telemetry/example_top_efficiency", today=day + dt.timedelta(days=1))
    for row in top[:5]:
        print(
            f"{'':17}user {row['user_id']:<5} efficiency={row['efficiency']:<7.2f}"
            f" actions={row['actions']:<6} hours={row['hours']:.2f}"
        )
    activity = ClickHouse().query("activity/day_rows", day=day)
    print(
        f"  ClickHouse     {settings.clickhouse.database('test')}.activity_daily: {len(activity)}"
        f" rows for {day} (os, gender, age slices), {len(app_days)} days loaded"
    )
    for row in activity:
        if row["dimension"] == "os":
            print(
                f"{'':17}os={row['dimension_value']:<8} views={row['views']:<7}"
                f" likes={row['likes']:<6} messages_sent={row['messages_sent']}"
            )
    print(
        f"  Reports        {settings.paths.reports / day.isoformat()}   (feed.txt/png, app.txt/png)"
    )
    alerts = ClickHouse().query(
        "ops/alerts_between",
        start=f"{replay[0]:%Y-%m-%d %H:%M:%S}",
        end=f"{replay[1]:%Y-%m-%d %H:%M:%S}",
    )
    print(
        f"  Alerts         {settings.clickhouse.database('ops')}.alerts: {len(alerts)} message(s)"
    )
    for row in alerts:
        print(
            f"{'':17}{row['slot']} {row['kind']:<8} {row['metric']:<16} {row['slice']:<12}"
            f" change={row['change']:+.0%}"
        )
    print(f"  Flags          {settings.paths.flags}   (.venv/bin/flags counts)")
    print(f"  Notifications  {settings.paths.outbox}   (reports, alerts, warnings; or Telegram)")
    print(f"  Runtime files  {settings.paths.runtime}")
    return 0


def start_crm(url: str, token: str) -> str:
    """The CRM stand-in in a background thread, unless something already answers at ``url``."""
    import requests

    try:
        requests.get(url.rstrip("/") + "/health", timeout=2)
        return f" (CRM at {url})"
    except requests.RequestException:
        pass
    where = urlparse(url)
    data = CrmData(customers(TelemetrySpec.users - 5), token=token)
    serve(where.hostname or "127.0.0.1", where.port or 80, data)
    return f" (CRM stand-in started at {url})"


if __name__ == "__main__":
    raise SystemExit(main())
