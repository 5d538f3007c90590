"""``make demo``: the main job on the local stack, then where to look.

Runs through the central scheduler (so the runs show in the luigid UI): the smoke flow (a file
in, a PostgreSQL and a ClickHouse table out), the sales year (generated into the inbox, then the
weekly flow for every week) and the telemetry mart for the last three days (generated telemetry,
customers from the CRM stand-in, which the demo starts when nothing answers at its URL).
"""

from __future__ import annotations

import datetime as dt
import sys
from urllib.parse import urlparse

import luigi

from config.settings import load_settings
from pipeline.clickhouse import ClickHouse
from pipeline.crm_service import CrmData, customers, serve
from pipeline.postgres import transaction
from pipeline.sales import SalesBackfill
from pipeline.sales_generator import SalesSpec, write_year
from pipeline.smoke import PG_TABLE, SmokeDemo, write_smoke_file
from pipeline.telemetry import TelemetryMart
from pipeline.telemetry_generator import TelemetrySpec, write_day
from stack.servers import url_port


def main() -> int:
    settings = load_settings()
    settings.paths.ensure()
    day = dt.date.today() - dt.timedelta(days=1)
    path = write_smoke_file(day)
    print(f"landed {path}")
    spec = SalesSpec()
    print("generating a year of sales (1,000,000 orders) into the inbox ...", flush=True)
    print(f"  {write_year(settings.paths.inbox, spec)}")
    last = spec.week_start(spec.weeks)
    mart_days = [day - dt.timedelta(days=i) for i in (2, 1, 0)]
    crm = start_crm(settings.crm.url, settings.crm.token)
    telemetry = TelemetrySpec()
    for mart_day in mart_days:
        print(f"telemetry for {mart_day}: {write_day(mart_day, telemetry)}", flush=True)
    result = luigi.build(
        [
            SmokeDemo(day=day),
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
    with transaction() as cur:
        cur.execute(f"SELECT count(*) FROM {PG_TABLE} WHERE event_date = %s", (day,))
        pg_rows = cur.fetchone()[0]  # type: ignore[index]
    summary = ClickHouse().query("smoke/daily_summary", day=day)
    pg = settings.postgres
    print("\nWhere to look:")
    print(f"  luigid UI      {settings.monitoring.luigid_url}/static/visualiser/index.html")
    print(f"  Prometheus     {settings.monitoring.prometheus_url}/targets")
    print(
        f"  PostgreSQL     {PG_TABLE}: {pg_rows} rows for {day}"
        f"  (psql -h {pg.host} -p {pg.port} -U {pg.user} {pg.database})"
    )
    print(
        f"  ClickHouse     {settings.clickhouse.database('ops')}.smoke_daily for {day}:"
        f"  (clickhouse-client --port {settings.clickhouse.port})"
    )
    for row in summary:
        line = f"{row['category']:<8} events={row['events']:<6} amount={row['amount']}"
        print(f"{'':17}{line}")
    with transaction() as cur:
        cur.execute("SELECT count(*) FROM sales.sales")
        sales_rows = cur.fetchone()[0]  # type: ignore[index]
        cur.execute("SELECT count(*), count(DISTINCT week_start) FROM sales.sales_agg")
        agg_rows, agg_weeks = cur.fetchone()  # type: ignore[misc]
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
    print(f"{'':17}the seed's top-efficiency query, last 7 days (emails left out here):")
    top = ClickHouse().query("telemetry/example_top_efficiency", today=day + dt.timedelta(days=1))
    for row in top[:5]:
        print(
            f"{'':17}user {row['user_id']:<5} efficiency={row['efficiency']:<7.2f}"
            f" actions={row['actions']:<6} hours={row['hours']:.2f}"
        )
    print(f"  Flags          {settings.paths.flags}   (.venv/bin/flags counts)")
    print(f"  Notifications  {settings.paths.outbox}   (warnings for the missing region)")
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
