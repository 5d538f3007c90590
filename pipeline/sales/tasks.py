"""The weekly sales flow of the online store: the week's region files loaded -> aggregates with
window functions in PostgreSQL -> ClickHouse with an import date -> a summary notification.

    luigi --module pipeline.sales sales.SalesWeekly --week 2024-01-15   # one week (a Monday)
    luigi --module pipeline.sales sales.SalesWeekly                      # last week
    luigi --module pipeline.sales sales.SalesCatchUp                     # the last weeks (cron)
    luigi --module pipeline.sales sales.SalesWeekly --week 2024-01-15 --force    # recompute
    luigi --module pipeline.sales sales.SalesWeekly --week 2024-01-15 --resend   # summary again
    luigi --module pipeline.sales sales.SalesBackfill --start 2023-09-04 --end 2024-08-26
    luigi --module pipeline.sales sales.SalesWeekly --week 2024-01-15 --engine spark  # on Spark
    luigi --module pipeline.sales sales.CleanSalesHistory --start 2023-09-04 --end 2024-08-26

A region whose files are missing when the week runs raises a warning notification and the flow
goes on with the others (as the requirement's own run did). Any failure sends a notification
naming the task and the error, and the run exits non-zero ([retcode] in luigi.cfg).

Completeness decides completion: each output records what it was computed from (the files with
rows in the week and the week before, with their row counts: ``sales/week_inputs``), and is
complete while that is unchanged and no file of those weeks waits in the inbox. A late or
corrected file makes the week (and the next, whose change against the previous week it alters)
incomplete: the next run loads it, recomputes the week in PostgreSQL, replaces it in ClickHouse
and sends a summary saying what changed. Messages go through the notification ledger.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import luigi

from config.settings import load_settings
from monitoring.metrics import record_rows
from pipeline.core import notifications, periods
from pipeline.core.faults import crash_point
from pipeline.core.files import atomic_write
from pipeline.core.notifications import Key, Message
from pipeline.core.tasks import (
    RESEND_HELP,
    RESENT_HELP,
    PeriodTask,
    PeriodWrapper,
    today_utc,
)
from pipeline.inbox.contract import SALES
from pipeline.inbox.tasks import ProcessInbox
from pipeline.sales.contract import REGIONS
from pipeline.sales.engines import (
    aggregate_on_spark,
    computed_by,
    engine_parameter,
    insert_week,
    record_engine,
)
from pipeline.sales.transform import describe_changes, week_prefix
from pipeline.systems import postgres
from pipeline.systems.clickhouse import ClickHouse, csv_chunks, replace_partition
from pipeline.systems.postgres import transaction
from pipeline.systems.spark import SparkTask

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def last_monday(today: dt.date | None = None) -> dt.date:
    """The Monday of the last complete week (UTC days: cron's Tuesday 12:45 Moscow is 09:45
    UTC, a day and more after the week ended everywhere)."""
    day = today or today_utc()
    return day - dt.timedelta(days=day.weekday() + 7)


class MondayParameter(luigi.DateParameter):
    def normalize(self, value: dt.date) -> dt.date:
        value = super().normalize(value)
        if value is not None and value.weekday() != 0:
            raise ValueError(f"a sales week starts on a Monday; {value} is a {value:%A}")
        return value


WEEK_HELP = "The week's Monday (YYYY-MM-DD)."
PG_OUTPUT = "postgres sales.sales_agg"
CH_OUTPUT = "clickhouse sales.sales_agg"


def week_inputs(week: dt.date, cur: Any | None = None) -> periods.Inputs:
    """What the week's aggregate is computed from: per part (this week, the previous week) and
    region, the files and rows of ``sales.sales``; and the files themselves (a corrected
    re-delivery has another id). Read in ``cur``'s snapshot when given."""
    if cur is None:
        with transaction() as own:
            return week_inputs(week, own)
    inputs: periods.Inputs = {"this week": {}, "previous week": {}, "files": []}
    if not postgres.table_exists(cur, "sales.sales"):
        return inputs
    # Through the BRIN index on sale_date: during a backfill the statistics lag the loads and
    # the planner scans the whole table (60 ms and growing instead of 10).
    postgres.run(cur, "sales/prefer_index")
    postgres.run(cur, "sales/week_inputs", {"week": week})
    for part, file_id, region, rows in cur.fetchall():
        entry = inputs[part].setdefault(region, {"files": 0, "rows": 0})
        entry["files"] += 1
        entry["rows"] += int(rows)
        inputs["files"].append(f"{part}:{file_id}:{rows}")
    return inputs


# One completeness check reads each week's inputs once. A task's ``complete()`` asks its
# requirements' first (the week's aggregate, then its ClickHouse copy, then the summary: each
# reads the same week's inputs), and Luigi asks again before each task runs: a year's backfill
# made ~470 of these queries. Inside one check (one call from Luigi, nested calls included) the
# inputs are read once, at its start; the next check reads them afresh.
_inputs_of_this_check: dict[dt.date, periods.Inputs] | None = None


@contextlib.contextmanager
def one_check() -> Iterator[None]:
    """A completeness check: the weeks' inputs are read at most once inside it."""
    global _inputs_of_this_check
    outermost = _inputs_of_this_check is None
    if outermost:
        _inputs_of_this_check = {}
    try:
        yield
    finally:
        if outermost:
            _inputs_of_this_check = None


class SalesTask(PeriodTask):
    """A task of one sales week."""

    week = MondayParameter(description=WEEK_HELP)
    engine = engine_parameter()

    def current(self) -> periods.Inputs:
        memo = _inputs_of_this_check
        if memo is None:
            return week_inputs(self.week)
        if self.week not in memo:
            memo[self.week] = week_inputs(self.week)
        return memo[self.week]

    def complete(self) -> bool:
        # A file of the week (or the week before) still in the inbox makes the week incomplete:
        # the run loads it first, so a late file is aggregated by the next run.
        with one_check():
            return all(r.complete() for r in luigi.task.flatten(self.requires())) and bool(
                self.output().exists()
            )


class SalesAggregates(SalesTask):
    """``sales.sales_agg`` for the week: the week's rows replaced in one transaction, with the
    record of the files they were computed from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.engine == "spark":
            # In the worker's own process, where the Spark driver lives on from week to week
            # (a task with a timeout is forked: a new driver each time); Spark's jobs are
            # cancelled after the same timeout instead (engines.aggregate_on_spark).
            self.worker_timeout = None  # type: ignore[assignment]  # Luigi's is Optional

    def requires(self) -> list[ProcessInbox]:
        return [
            ProcessInbox(dataset="sales", name_contains=week_prefix(week))
            for week in (self.week, self.week - dt.timedelta(weeks=1))
        ]

    def output(self) -> periods.InputsTarget:
        return periods.InputsTarget(
            "sales", PG_OUTPUT, self.week.isoformat(), self.current, self.forced
        )

    def run(self) -> None:
        periods.ensure_table()
        lock = f"{PG_OUTPUT} week {self.week}"
        with postgres.advisory_lock(lock, load_settings().flows.period_lock_timeout_s):
            inputs, computed = None, None
            if self.engine == "spark":
                inputs = week_inputs(self.week)  # before Spark reads the rows
                computed = aggregate_on_spark(self.week)
            # One snapshot: the inputs, the aggregate and its check see the same rows.
            with transaction(repeatable_read=True) as cur:
                inputs = inputs or week_inputs(self.week, cur)
                present = sorted(inputs["this week"])
                missing = [r for r in REGIONS if r not in present]
                if len(missing) == len(REGIONS):
                    raise RuntimeError(f"sales week {self.week}: no files loaded for any region")
                # A week is ~2% of a year: read it through the BRIN index on sale_date. Right
                # after a load the planner's statistics are stale and it picks a full scan.
                postgres.run(cur, "sales/prefer_index")
                # The DDL lock only when the table is missing: held to the commit, it would
                # make every week's aggregate wait for the others.
                postgres.ensure_table(cur, "sales.sales_agg", "sales/create_sales_agg")
                postgres.run(cur, "sales/delete_week", {"week": self.week})
                rows = insert_week(cur, self.week, computed)
                check_counted(cur, self.week, inputs)
                periods.write(
                    cur, "sales", PG_OUTPUT, self.week.isoformat(), inputs, self.forced, rows
                )
                crash_point("sales.before_commit")
        crash_point("sales.after_commit")
        record_rows("sales", "sales_agg", written=rows)
        how = record_engine(self.week, self.engine, computed)
        log.info("sales week %s: %d aggregate rows %s", self.week, rows, how)
        if missing:
            notifications.deliver(
                Key(
                    "warning", "sales", self.week.isoformat(), "missing regions", ",".join(missing)
                ),
                Message(
                    f"⚠️ sales week {self.week}: no files for region(s) {', '.join(missing)}; "
                    f"aggregated {', '.join(present)}",
                    label="warning",
                ),
            )
        self.progress(f"{rows} aggregate rows for {self.week} {how}", 100)


def check_counted(cur: Any, week: dt.date, inputs: periods.Inputs) -> None:
    """The aggregate counts exactly the week's orders it was computed from."""
    counted = int(postgres.fetch_value(cur, "sales/week_sales_counted", {"week": week}) or 0)
    loaded = sum(entry["rows"] for entry in inputs["this week"].values())
    if counted != loaded:
        raise RuntimeError(
            f"sales week {week}: the aggregate counts {counted} order(s), the week has {loaded}"
            " in sales.sales; nothing was committed (the rows changed under the computation:"
            " the next run recomputes the week)"
        )


class SalesAggregatesToClickHouse(SalesTask):
    """The week's aggregates in ClickHouse ``sales.sales_agg`` with the import date; the week's
    partition is replaced in one step, so a rerun replaces the week and readers never see it
    empty."""

    def requires(self) -> SalesAggregates:
        return SalesAggregates(week=self.week, engine=self.engine, forced=self.forced)

    def output(self) -> periods.InputsTarget:
        return periods.InputsTarget(
            "sales", CH_OUTPUT, self.week.isoformat(), self.current, self.forced
        )

    def run(self) -> None:
        # The record first: were the aggregate recomputed meanwhile, the older inputs recorded
        # here make the next run copy it again, never miss it.
        record = periods.read("sales", PG_OUTPUT, self.week.isoformat())
        if record is None:
            raise RuntimeError(f"sales week {self.week}: no PostgreSQL aggregate recorded")
        with transaction() as cur:
            postgres.run(cur, "sales/week_aggregates", {"week": self.week})
            rows = cur.fetchall()
        imported = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
        ch = ClickHouse()
        ch.ensure_once("sales/create_sales_agg")
        # The table is partitioned by week: the week is rebuilt in a stage and swapped in.
        replace_partition(
            ch,
            "sales",
            "sales_agg",
            int(f"{self.week:%Y%m%d}"),
            csv_chunks(row + (imported.date(), imported) for row in rows),
            expected_rows=len(rows),
        )
        periods.write_now(
            "sales", CH_OUTPUT, self.week.isoformat(), record.inputs, self.forced, len(rows)
        )


class SalesSummary(SalesTask):
    """The week's summary message, once per set of inputs (a recomputed week gets one saying
    what changed); at-most-once (the notification ledger)."""

    resent = luigi.Parameter(default="", significant=False, description=RESENT_HELP)

    def requires(self) -> SalesAggregatesToClickHouse:
        return SalesAggregatesToClickHouse(week=self.week, engine=self.engine, forced=self.forced)

    def key(self, digest: str) -> Key:
        return Key("summary", "sales", self.week.isoformat(), "", digest)

    def complete(self) -> bool:
        with one_check():
            return notifications.settled(self.key(periods.digest(self.current())), self.resent)

    def run(self) -> None:
        record = periods.read("sales", CH_OUTPUT, self.week.isoformat())
        if record is None:
            raise RuntimeError(f"sales week {self.week}: not in ClickHouse yet")
        rows = ClickHouse().query("sales/week_summary", week=self.week)
        lines = [f"{r['region']}: {r['sales']:,} sales, {r['amount']:,.2f}" for r in rows]
        changed = describe_changes(record.previous, record.inputs)
        head = (
            f"🔁 sales week {self.week} recomputed{computed_by(self.week)}; what changed:"
            if changed
            else f"✅ sales week {self.week} loaded{computed_by(self.week)}"
        )
        notifications.deliver(
            self.key(record.digest),
            Message("\n".join([head, *changed, *lines]), label="summary"),
            self.resent,
        )


class SalesWeekly(PeriodWrapper):
    """The whole weekly flow for one week; a summary notification when it is done."""

    week = MondayParameter(
        default=last_monday(), description=WEEK_HELP + " Default: the last complete week."
    )
    engine = engine_parameter()
    resend = luigi.BoolParameter(default=False, significant=False, description=RESEND_HELP)

    def complete(self) -> bool:
        with one_check():  # its two requirements read the week's inputs once
            return bool(super().complete())

    def requires(self) -> list[SalesTask]:
        return week_tasks(self.week, self.engine, self.force_token, self.resend_token)


def week_tasks(week: dt.date, engine: str, forced: str, resent: str = "") -> list[SalesTask]:
    """What makes a week done: its aggregates in ClickHouse and its summary sent."""
    args = {"week": week, "engine": engine, "forced": forced}
    return [SalesAggregatesToClickHouse(**args), SalesSummary(**args, resent=resent)]


class SalesRangeSummary(PeriodTask):
    """One summary message for a backfill's weeks instead of one per week (a year: one message,
    not 52): the weeks whose own summary is not settled are reported together — per region
    totals, and what changed in the weeks recomputed — and then recorded as settled by it, so a
    later run of one of those weeks sends nothing unless its inputs change (``--resend`` on
    ``SalesWeekly`` sends a week's own). At-most-once, through the notification ledger: a week
    whose own summary a dead run left pending is not reported again."""

    start = MondayParameter(description="The first week's Monday (YYYY-MM-DD).")
    end = MondayParameter(description="The last week's Monday (YYYY-MM-DD), included.")
    engine = engine_parameter()

    def weeks(self) -> list[dt.date]:
        return [
            self.start + dt.timedelta(weeks=i) for i in range((self.end - self.start).days // 7 + 1)
        ]

    def week_summary(self, week: dt.date) -> SalesSummary:
        return SalesSummary(week=week, engine=self.engine, forced=self.forced)

    def requires(self) -> list[SalesAggregatesToClickHouse]:
        return [
            SalesAggregatesToClickHouse(week=week, engine=self.engine, forced=self.forced)
            for week in self.weeks()
        ]

    def complete(self) -> bool:
        with one_check():
            return all(self.week_summary(week).complete() for week in self.weeks())

    def run(self) -> None:
        pending: list[tuple[dt.date, Key, list[str]]] = []
        digests = []
        for week in self.weeks():
            record = periods.read("sales", CH_OUTPUT, week.isoformat())
            if record is None:
                raise RuntimeError(f"sales week {week}: not in ClickHouse yet")
            digests.append(f"{week}:{record.digest}")
            key = self.week_summary(week).key(record.digest)
            # Not yet sent; a week's own summary left pending by a run that died may have gone
            # out: at most once, it is not reported again.
            if notifications.settle_pending(key):
                pending.append((week, key, describe_changes(record.previous, record.inputs)))
        if not pending:
            return
        first, last = pending[0][0], pending[-1][0]
        rows = ClickHouse().query("sales/range_summary", start=first, end=last)
        engines = sorted({computed_by(week) for week, _, _ in pending})
        changed = [(week, lines) for week, _, lines in pending if lines]
        head = (
            f"✅ sales weeks {first} to {last}: {len(pending)} week(s) loaded"
            f"{' and '.join(e for e in engines if e)}"
        )
        body = [f"totals of the weeks {first} to {last}:"]
        body += [f"{r['region']}: {r['sales']:,} sales, {r['amount']:,.2f}" for r in rows]
        if changed:
            body.append(f"recomputed {len(changed)} week(s); what changed:")
            body += [f"week {week}: {'; '.join(lines)}" for week, lines in changed[:10]]
            if len(changed) > 10:
                body.append(f"… and {len(changed) - 10} more week(s)")
        # The key is the range and every week's inputs: a rerun after a crash finds this very
        # message sent (whatever another run settled meanwhile) and only records the weeks.
        key = Key(
            "summary", "sales", f"{self.start}..{self.end}", "", periods.digest({"w": digests})
        )
        notifications.deliver(key, Message("\n".join([head, *body]), label="summary"))
        crash_point("sales.range_summary_sent")
        notifications.record_covered([week_key for _, week_key, _ in pending], by=key)
        self.progress(f"one summary for {len(pending)} week(s)", 100)


class SalesBackfill(PeriodWrapper):
    """Every week from ``start`` to ``end`` (Mondays, inclusive): one command for a year. Each
    week's tasks run as in ``SalesWeekly``, and one summary message covers the weeks
    (``SalesRangeSummary``)."""

    start = MondayParameter(description="The first week's Monday (YYYY-MM-DD).")
    end = MondayParameter(description="The last week's Monday (YYYY-MM-DD), included.")
    engine = engine_parameter()

    def complete(self) -> bool:
        with one_check():
            return bool(super().complete())

    def requires(self) -> list[PeriodTask]:
        # Each week's tasks straight under the backfill, not a SalesWeekly wrapper per week (a
        # wrapper does nothing, yet Luigi's workers fork a process for it), and one summary for
        # the range instead of a summary task per week.
        summary = SalesRangeSummary(
            start=self.start, end=self.end, engine=self.engine, forced=self.force_token
        )
        return [*summary.requires(), summary]


class SalesCatchUp(PeriodWrapper):
    """The last ``weeks`` complete weeks (cron): a week missed, or one a late file changed, is
    done by the next run; a week already complete costs one check."""

    weeks = luigi.IntParameter(
        default=load_settings().flows.catchup_weeks,
        description="How many weeks back, the last complete week included; default"
        f" {load_settings().flows.catchup_weeks} (setting PIPELINE_CATCHUP_WEEKS).",
    )
    engine = engine_parameter()

    def requires(self) -> list[SalesWeekly]:
        last = last_monday()
        return [
            SalesWeekly(week=last - dt.timedelta(weeks=i), engine=self.engine, force=self.force)
            for i in reversed(range(self.weeks))
        ]


def archived_files(start: dt.date, end: dt.date) -> list[Path]:
    """The archived raw sales files (``archive/YYYY/MM/DD/<id>__<name>.gz``) of the weeks from
    ``start`` to ``end``, by the week in their name, in archive order."""
    found = []
    for path in sorted(load_settings().paths.archive.glob("*/*/*/*__*.gz")):
        original = path.name.removesuffix(".gz").partition("__")[2]
        attributes = SALES.match(original)
        if attributes is None:
            continue
        monday = dt.date.fromisocalendar(int(attributes["year"]), int(attributes["week"]), 1)
        if start <= monday <= end:
            found.append(path)
    return found


class CleanSalesHistory(SparkTask):
    """History reprocessed on Spark: the archived raw weekly files of the weeks from ``start``
    to ``end`` (a year: 204 files, 1M rows) cleaned as the inbox cleans one file — one row per
    sale_id, typed exactly (amounts decimal(14, 2)) — into Parquet under
    ``<runtime>/sales/history/<start>--<end>/clean/``; rows that break a rule go to
    ``rejects/`` beside it with the file and the rule. On a cluster the runtime folder must be
    shared storage (the executors read the archive and write the Parquet)."""

    start = MondayParameter(description="The first week's Monday (YYYY-MM-DD).")
    end = MondayParameter(description="The last week's Monday (YYYY-MM-DD), included.")

    def folder(self) -> Path:
        name = f"{self.start.isoformat()}--{self.end.isoformat()}"
        return load_settings().paths.runtime / "sales" / "history" / name

    def output(self) -> luigi.LocalTarget:
        # Spark writes _SUCCESS when the clean dataset's files are all committed.
        return luigi.LocalTarget(str(self.folder() / "clean" / "_SUCCESS"))

    def main(self, spark: SparkSession) -> None:
        from pipeline.sales.spark import clean_history

        files = archived_files(self.start, self.end)
        if not files:
            raise FileNotFoundError(
                f"no archived sales files for the weeks {self.start} to {self.end} under "
                f"{load_settings().paths.archive}"
            )
        folder = self.folder()
        counts = clean_history(spark, files, folder / "clean", folder / "rejects")
        atomic_write(folder / "summary.json", json.dumps(dataclasses.asdict(counts)))
        summary = (
            f"sales history {self.start} to {self.end}: {counts.files} files, "
            f"{counts.rows_read:,} rows read, {counts.duplicates:,} duplicates, "
            f"{counts.rejected:,} rejected, {counts.written:,} written in {counts.seconds:.1f} s "
            f"(Spark application {counts.application_id})"
        )
        log.info(summary)
        self.progress(summary, 100)
