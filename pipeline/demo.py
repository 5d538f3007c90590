"""``make demo``: the main job on the local stack, then where to look.

Until the flows land this runs the smoke flow (a file in, a PostgreSQL and a ClickHouse table
out) through the central scheduler, so the run shows in the luigid UI.
"""

from __future__ import annotations

import datetime as dt
import sys

import luigi

from config.settings import load_settings
from pipeline.clickhouse import ClickHouse
from pipeline.postgres import transaction
from pipeline.sales import SalesBackfill
from pipeline.sales_generator import SalesSpec, write_year
from pipeline.smoke import PG_TABLE, SmokeDemo, write_smoke_file
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
    result = luigi.build(
        [SmokeDemo(day=day), SalesBackfill(start=spec.first_monday, end=last)],
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
    print(f"  Flags          {settings.paths.flags}   (.venv/bin/flags counts)")
    print(f"  Notifications  {settings.paths.outbox}   (warnings for the missing region)")
    print(f"  Runtime files  {settings.paths.runtime}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
