"""The weekly sales flow of the online store: the week's region files loaded -> aggregates with
window functions in PostgreSQL -> ClickHouse with an import date -> a summary notification.

    luigi --module pipeline.sales sales.SalesWeekly --week 2024-01-15   # one week (a Monday)
    luigi --module pipeline.sales sales.SalesWeekly                      # last week (cron)
    luigi --module pipeline.sales sales.SalesBackfill --start 2023-09-04 --end 2024-08-26

A region whose files are missing when the week runs raises a warning notification and the flow
goes on with the others (as the requirement's own run did). Any failure sends a notification
naming the task and the error, and the run exits non-zero ([retcode] in luigi.cfg).
"""

from __future__ import annotations

import datetime as dt
import logging

import luigi

from monitoring.metrics import record_rows
from pipeline.core.tasks import PipelineTask
from pipeline.inbox.tasks import ProcessInbox
from pipeline.sales.contract import REGIONS
from pipeline.systems import postgres
from pipeline.systems.clickhouse import (
    ClickHouse,
    ClickHouseMarkerTarget,
    csv_chunks,
    replace_partition,
)
from pipeline.systems.postgres import (
    PostgresMarkerTarget,
    ensure_marker_table,
    serialize_ddl,
    transaction,
    write_marker,
)
from pipeline.systems.telegram import Notifier

log = logging.getLogger(__name__)


def last_monday(today: dt.date | None = None) -> dt.date:
    """The Monday of the last complete week."""
    day = today or dt.date.today()
    return day - dt.timedelta(days=day.weekday() + 7)


def week_prefix(week: dt.date) -> str:
    year, number, _ = week.isocalendar()
    return f"sales_{year}_w{number:02d}_"


class MondayParameter(luigi.DateParameter):
    def normalize(self, value: dt.date) -> dt.date:
        value = super().normalize(value)
        if value is not None and value.weekday() != 0:
            raise ValueError(f"a sales week starts on a Monday; {value} is a {value:%A}")
        return value


WEEK_HELP = "The week's Monday (YYYY-MM-DD)."


class SalesAggregates(PipelineTask):
    """``sales.sales_agg`` for the week: the week's rows replaced in one transaction."""

    week = MondayParameter(description=WEEK_HELP)

    def requires(self) -> ProcessInbox:
        return ProcessInbox(dataset="sales", name_contains=week_prefix(self.week))

    def output(self) -> PostgresMarkerTarget:
        return PostgresMarkerTarget("sales.sales_agg", self.week.isoformat())

    def run(self) -> None:
        with transaction() as cur:
            ensure_marker_table(cur)
            # A week is ~2% of a year: read it through the BRIN index on sale_date. Right after a
            # load the planner's statistics are stale and it picks a full scan (4x slower here).
            postgres.run(cur, "sales/prefer_index")
            present: set[str] = set()
            if postgres.table_exists(cur, "sales.sales"):
                postgres.run(cur, "sales/week_regions", {"week": self.week})
                present = {r[0] for r in cur.fetchall()}
            missing = [r for r in REGIONS if r not in present]
            if len(missing) == len(REGIONS):
                raise RuntimeError(f"sales week {self.week}: no files loaded for any region")
            serialize_ddl(cur, "sales.sales_agg")
            postgres.run(cur, "sales/create_sales_agg")
            postgres.run(cur, "sales/delete_week", {"week": self.week})
            postgres.run(cur, "sales/aggregate_week", {"week": self.week})
            rows = cur.rowcount
            write_marker(cur, "sales.sales_agg", self.week.isoformat(), rows)
        record_rows("sales", "sales_agg", written=rows)
        if missing:
            Notifier().send(
                f"⚠️ sales week {self.week}: no files for region(s) {', '.join(missing)}; "
                f"aggregated {', '.join(sorted(present))}",
                kind="warning",
            )
        self.progress(f"{rows} aggregate rows for {self.week}", 100)


class SalesAggregatesToClickHouse(PipelineTask):
    """The week's aggregates in ClickHouse ``sales.sales_agg`` with the import date; the week's
    partition is replaced in one step, so a rerun replaces the week and readers never see it
    empty."""

    week = MondayParameter(description=WEEK_HELP)

    def requires(self) -> SalesAggregates:
        return SalesAggregates(week=self.week)

    def output(self) -> ClickHouseMarkerTarget:
        return ClickHouseMarkerTarget("sales_agg", self.week.isoformat())

    def run(self) -> None:
        with transaction() as cur:
            postgres.run(cur, "sales/week_aggregates", {"week": self.week})
            rows = cur.fetchall()
        imported = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
        ch = ClickHouse()
        ch.execute("sales/create_sales_agg")
        # The table is partitioned by week: the week is rebuilt in a stage and swapped in.
        replace_partition(
            ch,
            "sales",
            "sales_agg",
            int(f"{self.week:%Y%m%d}"),
            csv_chunks(row + (imported.date(), imported) for row in rows),
        )
        self.output().touch(len(rows))


class SalesWeekly(luigi.WrapperTask):
    """The whole weekly flow for one week; a summary notification when it is done."""

    week = MondayParameter(
        default=last_monday(), description=WEEK_HELP + " Default: the last complete week."
    )

    def requires(self) -> SalesAggregatesToClickHouse:
        return SalesAggregatesToClickHouse(week=self.week)


@SalesWeekly.event_handler(luigi.Event.SUCCESS)
def _summary(task: SalesWeekly) -> None:
    rows = ClickHouse().query("sales/week_summary", week=task.week)
    lines = [f"{r['region']}: {r['sales']} sales, {r['amount']:.2f}" for r in rows]
    Notifier().send(f"✅ sales week {task.week} loaded\n" + "\n".join(lines), kind="summary")


class SalesBackfill(luigi.WrapperTask):
    """Every week from ``start`` to ``end`` (Mondays, inclusive): one command for a year."""

    start = MondayParameter(description="The first week's Monday (YYYY-MM-DD).")
    end = MondayParameter(description="The last week's Monday (YYYY-MM-DD), included.")

    def requires(self) -> list[SalesWeekly]:
        weeks = (self.end - self.start).days // 7 + 1
        return [SalesWeekly(week=self.start + dt.timedelta(weeks=i)) for i in range(weeks)]
