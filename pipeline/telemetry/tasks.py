"""The telemetry + CRM data mart (the BionicPRO reporting mart): daily at 02:00 for the
previous day.

The tasks (the requirement names them extract_telemetry, extract_crm_data, transform_data,
create_data_mart_table and load_to_clickhouse)::

    ExtractTelemetry(date) ─┐
                            ├─> TransformData(date) ─┐
    ExtractCrmData(date) ───┘                        ├─> LoadToClickHouse(date) <- TelemetryMart
                              CreateDataMartTable() ─┘

- ``ExtractTelemetry``: the day's device events aggregated per user x prosthesis in PostgreSQL
  (total actions, average/max/min response time, grasp/release/flex counts, average/min battery)
  with the usage seconds of the sessions that overlap the day (clipped to it). Days are UTC.
- ``ExtractCrmData``: every customer from the CRM's HTTP API (``pipeline.systems.crm``).
- ``TransformData``: the join and the derived metrics (``pipeline.telemetry.transform``, pure).
- ``CreateDataMartTable``: ``bionicpro_reports.reports_data_mart`` if missing.
- ``LoadToClickHouse``: the day replaced in the mart: its month partition is rebuilt in a stage
  table (the month's other days + the new day) and swapped in with ``REPLACE PARTITION``, so a
  rerun of a day gives the same table. One load at a time (Luigi resource ``bionicpro_mart``).

Each task retries twice, five minutes apart (``PIPELINE_DAILY_RETRIES``; Luigi's ``retry_count``
counts the failures before it gives up; the delay is ``[scheduler] retry_delay`` in luigi.cfg).
Every failure sends a notification (``PipelineTask``); a success sends a summary with counts only.

Personal data (emails, names) is in the CRM file, the mart file (both mode 0600 under
``var/telemetry/<date>/``, deleted by the retention flow after ``PIPELINE_RETENTION_PERSONAL_DAYS``)
and the mart; never in logs, flags or notifications.

No silent success: a CRM answer with no customers fails a day that has telemetry, and a day
whose rows are mostly unknown to the CRM warns (above ``PIPELINE_CRM_UNMATCHED_WARN_SHARE``) or
fails (above ``PIPELINE_CRM_UNMATCHED_FAIL_SHARE``); the mart has one row per telemetry row, and
ClickHouse the rows sent (checked before the swap).

Completeness decides completion: each output records the day's telemetry watermarks (rows and
latest time per source table, ``telemetry/day_inputs``); late uploads make the day incomplete and
the next run recomputes it. The CRM is read when the day runs (no history) and is not part of
that; ``--force`` recomputes a complete day (the CRM read again).

    luigi --module pipeline.telemetry telemetry.TelemetryMart --date 2024-01-15
    luigi --module pipeline.telemetry telemetry.TelemetryMart --date 2024-01-15 --force
    luigi --module pipeline.telemetry telemetry.TelemetryCatchUp      # the last 7 days (cron)
    luigi --module pipeline.telemetry RangeDaily --of telemetry.TelemetryMart \\
        --start 2024-01-01 --stop 2024-02-01                         # a backfill
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import luigi
import pandas as pd

from config.settings import load_settings
from monitoring.metrics import record_rows
from pipeline.core import notifications, periods
from pipeline.core.notifications import Key, Message
from pipeline.core.tasks import (
    RESEND_HELP,
    RESENT_HELP,
    PeriodTask,
    PeriodWrapper,
    daily_retry_count,
    yesterday,
)
from pipeline.core.workfiles import (
    WorkFileTarget,
    day_target,
    day_work_file,
    inputs_of,
    read_frame,
    write_frame,
)
from pipeline.systems import postgres
from pipeline.systems.clickhouse import ClickHouse, csv_chunks, replace_day
from pipeline.systems.crm import CrmClient
from pipeline.systems.postgres import transaction
from pipeline.telemetry.contract import MART, SOURCES_DDL
from pipeline.telemetry.transform import CRM_COLUMNS, MART_COLUMNS, TELEMETRY_COLUMNS, build_mart


def day_bounds(date: dt.date) -> tuple[dt.datetime, dt.datetime]:
    lo = dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC)
    return lo, lo + dt.timedelta(days=1)


DATE_HELP = "The day (UTC) of the mart to build; default: yesterday."
OUTPUT = "clickhouse bionicpro_reports.reports_data_mart"


def day_inputs(date: dt.date) -> periods.Inputs:
    """What a day of the mart is computed from: per source table, the day's rows and latest
    time (the CRM is read as it is when the day runs)."""
    postgres.ensure(SOURCES_DDL, "telemetry")  # no telemetry yet: an empty day, not an error
    lo, hi = day_bounds(date)
    with transaction() as cur:
        postgres.run(cur, "telemetry/day_inputs", {"lo": lo, "hi": hi})
        found = cur.fetchall()
    return {
        source: {"rows": int(rows), "latest": latest.isoformat() if latest else None}
        for source, rows, latest in found
    }


class MartTask(PeriodTask):
    retry_count = daily_retry_count()  # [scheduler] retry_delay apart


class MartDayTask(MartTask):
    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)

    def current(self) -> periods.Inputs:
        return day_inputs(self.date)

    def work_file(self, name: str) -> WorkFileTarget:
        return day_work_file("telemetry", self.date, name, self.current, self.forced)


class ExtractTelemetry(MartDayTask):
    """The day's telemetry per user x prosthesis, aggregated in PostgreSQL."""

    def output(self) -> WorkFileTarget:
        return self.work_file("telemetry.parquet")

    def run(self) -> None:
        inputs = self.current()  # before the rows: a change in between is seen next run
        lo, hi = day_bounds(self.date)
        with transaction() as cur:
            postgres.run(cur, "telemetry/extract_day", {"lo": lo, "hi": hi})
            frame = pd.DataFrame(cur.fetchall(), columns=TELEMETRY_COLUMNS)
        write_frame(frame, self.output(), inputs, self.forced)
        self.progress(f"{len(frame)} user x prosthesis rows for {self.date}", 100)


class ExtractCrmData(MartDayTask):
    """Every CRM customer (the CRM has no history: this is its state when the task runs). Kept
    while the day's later files need it; the retention flow deletes it after
    ``PIPELINE_RETENTION_PERSONAL_DAYS`` (personal data)."""

    def output(self) -> WorkFileTarget:
        # Not part of the day's inputs: complete while the file exists (a forced run reads the
        # CRM again).
        return WorkFileTarget(
            day_target("telemetry", self.date, "crm.parquet").path, dict, self.forced
        )

    def run(self) -> None:
        rows: list[dict[str, Any]] = []
        for customer in CrmClient().customers():
            rows.append(
                {
                    "user_id": customer.user_id,
                    "email": customer.email,
                    "first_name": customer.first_name,
                    "last_name": customer.last_name,
                    "order_date": customer.order_date,
                    "status": customer.status,
                }
            )
            if len(rows) % 1000 == 0:
                self.progress(f"{len(rows)} customers read")
        write_frame(pd.DataFrame(rows, columns=CRM_COLUMNS), self.output(), {}, self.forced)
        self.progress(f"{len(rows)} customers", 100)


class TransformData(MartDayTask):
    """The mart's rows for the day (``pipeline.telemetry.transform.build_mart``), checked: one
    row per telemetry row, and the CRM answered for most of them."""

    def requires(self) -> dict[str, luigi.Task]:
        day = {"date": self.date, "forced": self.forced}
        return {"telemetry": ExtractTelemetry(**day), "crm": ExtractCrmData(**day)}

    def output(self) -> WorkFileTarget:
        return self.work_file("mart.parquet")

    def run(self) -> None:
        inputs = self.input()
        telemetry, crm = read_frame(inputs["telemetry"]), read_frame(inputs["crm"])
        mart = build_mart(telemetry, crm, self.date)
        if len(mart) != len(telemetry):
            raise RuntimeError(
                f"telemetry mart {self.date}: {len(mart)} row(s) from {len(telemetry)} telemetry"
                " row(s); the join must keep one row per user x prosthesis"
            )
        unknown = int((mart["crm_matched"] == 0).sum())
        check_crm_coverage(self.date, len(mart), unknown, len(crm))
        recorded = inputs_of(inputs["telemetry"])
        write_frame(mart, self.output(), recorded[0] if recorded else {}, self.forced)
        self.progress(f"{len(mart)} rows, {unknown} user row(s) unknown to the CRM", 100)


def check_crm_coverage(date: dt.date, rows: int, unknown: int, customers: int) -> None:
    """No silent success: an empty CRM answer, or one that knows too few of the day's users,
    is not a mart. Above the warn share a warning goes out (once per day and count), above the
    fail share the day fails."""
    if not rows:
        return
    flows = load_settings().flows
    if customers == 0:
        raise RuntimeError(
            f"telemetry mart {date}: the CRM answered with no customers for {rows} telemetry"
            " row(s); check the CRM (PIPELINE_CRM_URL) before loading a mart without it"
        )
    share = unknown / rows
    if share > flows.crm_unmatched_fail_share:
        raise RuntimeError(
            f"telemetry mart {date}: {unknown} of {rows} row(s) ({share:.0%}) are users the CRM"
            f" does not know (over PIPELINE_CRM_UNMATCHED_FAIL_SHARE"
            f" {flows.crm_unmatched_fail_share:.0%}); check the CRM's answer"
        )
    if share > flows.crm_unmatched_warn_share:
        notifications.deliver(
            Key("warning", "telemetry", date.isoformat(), "crm unmatched", f"{unknown}/{rows}"),
            Message(
                f"⚠️ telemetry mart {date}: {unknown} of {rows} row(s) ({share:.0%}) are users"
                " the CRM does not know (over PIPELINE_CRM_UNMATCHED_WARN_SHARE"
                f" {flows.crm_unmatched_warn_share:.0%}); loaded with empty CRM fields",
                label="warning",
            ),
        )


class MartTableTarget(luigi.Target):
    def exists(self) -> bool:
        ch = ClickHouse()
        rows = ch.query("telemetry/mart_exists", database=ch.settings.database("bionicpro_reports"))
        return bool(rows and rows[0]["present"])


class CreateDataMartTable(MartTask):
    """``bionicpro_reports.reports_data_mart`` (monthly partitions) if it is not there."""

    def output(self) -> MartTableTarget:
        return MartTableTarget()

    def run(self) -> None:
        ClickHouse().execute("telemetry/create_mart")


class LoadToClickHouse(MartDayTask):
    """The day in the mart, replaced as a whole (its month rebuilt and swapped in)."""

    resources = {"bionicpro_mart": 1}  # fewer lock waits with luigid; the period lock is the rule

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "rows": TransformData(date=self.date, forced=self.forced),
            "table": CreateDataMartTable(),
        }

    def output(self) -> periods.InputsTarget:
        return periods.InputsTarget(
            "telemetry", OUTPUT, self.date.isoformat(), self.current, self.forced
        )

    def run(self) -> None:
        recorded = inputs_of(self.input()["rows"])
        inputs = recorded[0] if recorded else {"unrecorded": True}
        mart = read_frame(self.input()["rows"])
        loaded_at = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
        rows = (
            tuple(None if pd.isna(v) else v for v in row) + (loaded_at,)
            for row in mart[MART_COLUMNS].itertuples(index=False, name=None)
        )
        self.progress(f"replacing {self.date} with {len(mart)} rows", 50)
        replace_day(
            ClickHouse(),
            "bionicpro_reports",
            MART,
            "report_date",
            self.date,
            csv_chunks(rows),
            expected_rows=len(mart),
        )
        periods.write_now(
            "telemetry", OUTPUT, self.date.isoformat(), inputs, self.forced, len(mart)
        )
        record_rows("telemetry", MART, written=len(mart))
        self.progress(f"{len(mart)} rows for {self.date} in the mart", 100)


class TelemetrySummary(MartDayTask):
    """The day's summary message (counts only, no personal data), once per state of the day's
    telemetry: a recomputed day gets one saying what changed. At-most-once (the ledger)."""

    resent = luigi.Parameter(default="", significant=False, description=RESENT_HELP)

    def requires(self) -> LoadToClickHouse:
        return LoadToClickHouse(date=self.date, forced=self.forced)

    def key(self, digest: str) -> Key:
        return Key("summary", "telemetry", self.date.isoformat(), "", digest)

    def complete(self) -> bool:
        return notifications.settled(self.key(periods.digest(self.current())), self.resent)

    def run(self) -> None:
        record = periods.read("telemetry", OUTPUT, self.date.isoformat())
        if record is None:
            raise RuntimeError(f"telemetry mart {self.date}: not loaded yet")
        rows = ClickHouse().query("telemetry/day_counts", day=self.date)
        counts = rows[0] if rows else {"rows": 0, "users": 0, "unknown_to_crm": 0, "actions": 0}
        changed = periods.changes(record.previous, record.inputs)
        text = (
            f"✅ telemetry mart {self.date}: {counts['rows']} rows, {counts['users']} users, "
            f"{counts['actions']} actions; {counts['unknown_to_crm']} row(s) of users unknown to"
            " the CRM (kept with empty CRM fields)"
        )
        if changed:
            text = "\n".join(
                [f"🔁 telemetry mart {self.date} recomputed; what changed:", *changed, text]
            )
        notifications.deliver(self.key(record.digest), Message(text, label="summary"), self.resent)


class TelemetryMart(PeriodWrapper):
    """The whole daily flow for one day (default: yesterday); a summary when it is done."""

    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)
    resend = luigi.BoolParameter(default=False, significant=False, description=RESEND_HELP)

    def requires(self) -> list[MartDayTask]:
        day = {"date": self.date, "forced": self.force_token}
        return [LoadToClickHouse(**day), TelemetrySummary(**day, resent=self.resend_token)]


class TelemetryCatchUp(PeriodWrapper):
    """The last ``days`` days (cron): a night the machine was down, or a day late uploads
    changed, is done by the next run; a day already complete costs one check."""

    days = luigi.IntParameter(
        default=load_settings().flows.catchup_days,
        description="How many days back, yesterday (UTC) included; default"
        f" {load_settings().flows.catchup_days} (setting PIPELINE_CATCHUP_DAYS).",
    )

    def requires(self) -> list[TelemetryMart]:
        last = yesterday()
        return [
            TelemetryMart(date=last - dt.timedelta(days=i), force=self.force)
            for i in reversed(range(self.days))
        ]
