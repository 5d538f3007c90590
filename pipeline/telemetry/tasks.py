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
``var/telemetry/<date>/``) and the mart; never in logs, flags or notifications.

    luigi --module pipeline.telemetry telemetry.TelemetryMart --date 2024-01-15
    luigi --module pipeline.telemetry RangeDaily --of telemetry.TelemetryMart \\
        --start 2024-01-01 --stop 2024-02-01                         # a backfill
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import luigi
import pandas as pd

from monitoring.metrics import record_rows
from pipeline.core.tasks import PipelineTask, daily_retry_count, yesterday
from pipeline.core.workfiles import day_target, read_frame, write_frame
from pipeline.systems import postgres
from pipeline.systems.clickhouse import ClickHouse, ClickHouseMarkerTarget, csv_chunks, replace_day
from pipeline.systems.crm import CrmClient
from pipeline.systems.postgres import transaction
from pipeline.systems.telegram import Notifier
from pipeline.telemetry.contract import MART, SOURCES_DDL
from pipeline.telemetry.transform import CRM_COLUMNS, MART_COLUMNS, TELEMETRY_COLUMNS, build_mart


def day_bounds(date: dt.date) -> tuple[dt.datetime, dt.datetime]:
    lo = dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC)
    return lo, lo + dt.timedelta(days=1)


DATE_HELP = "The day (UTC) of the mart to build; default: yesterday."


class MartTask(PipelineTask):
    retry_count = daily_retry_count()  # [scheduler] retry_delay apart


class ExtractTelemetry(MartTask):
    """The day's telemetry per user x prosthesis, aggregated in PostgreSQL."""

    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)

    def output(self) -> luigi.LocalTarget:
        return day_target("telemetry", self.date, "telemetry.parquet")

    def run(self) -> None:
        postgres.ensure(
            SOURCES_DDL, "telemetry"
        )  # a database with no telemetry yet gives an empty day, not an error
        lo, hi = day_bounds(self.date)
        with transaction() as cur:
            postgres.run(cur, "telemetry/extract_day", {"lo": lo, "hi": hi})
            frame = pd.DataFrame(cur.fetchall(), columns=TELEMETRY_COLUMNS)
        write_frame(frame, self.output())
        self.progress(f"{len(frame)} user x prosthesis rows for {self.date}", 100)


class ExtractCrmData(MartTask):
    """Every CRM customer (the CRM has no history: this is its state when the task runs)."""

    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)

    def output(self) -> luigi.LocalTarget:
        return day_target("telemetry", self.date, "crm.parquet")

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
        write_frame(pd.DataFrame(rows, columns=CRM_COLUMNS), self.output())
        self.progress(f"{len(rows)} customers", 100)


class TransformData(MartTask):
    """The mart's rows for the day (``pipeline.telemetry.transform.build_mart``)."""

    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)

    def requires(self) -> dict[str, luigi.Task]:
        return {
            "telemetry": ExtractTelemetry(date=self.date),
            "crm": ExtractCrmData(date=self.date),
        }

    def output(self) -> luigi.LocalTarget:
        return day_target("telemetry", self.date, "mart.parquet")

    def run(self) -> None:
        inputs = self.input()
        mart = build_mart(read_frame(inputs["telemetry"]), read_frame(inputs["crm"]), self.date)
        write_frame(mart, self.output())
        unknown = int((mart["crm_matched"] == 0).sum())
        self.progress(f"{len(mart)} rows, {unknown} user row(s) unknown to the CRM", 100)


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


class LoadToClickHouse(MartTask):
    """The day in the mart, replaced as a whole (its month rebuilt and swapped in)."""

    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)
    resources = {"bionicpro_mart": 1}  # two days of one month must not swap concurrently

    def requires(self) -> dict[str, luigi.Task]:
        return {"rows": TransformData(date=self.date), "table": CreateDataMartTable()}

    def output(self) -> ClickHouseMarkerTarget:
        return ClickHouseMarkerTarget(MART, self.date.isoformat())

    def run(self) -> None:
        mart = read_frame(self.input()["rows"])
        loaded_at = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
        rows = (
            tuple(None if pd.isna(v) else v for v in row) + (loaded_at,)
            for row in mart[MART_COLUMNS].itertuples(index=False, name=None)
        )
        self.progress(f"replacing {self.date} with {len(mart)} rows", 50)
        replace_day(
            ClickHouse(), "bionicpro_reports", MART, "report_date", self.date, csv_chunks(rows)
        )
        self.output().touch(len(mart))
        record_rows("telemetry", MART, written=len(mart))
        self.progress(f"{len(mart)} rows for {self.date} in the mart", 100)


class TelemetryMart(luigi.WrapperTask):
    """The whole daily flow for one day (default: yesterday); a summary when it is done."""

    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)

    def requires(self) -> LoadToClickHouse:
        return LoadToClickHouse(date=self.date)


@TelemetryMart.event_handler(luigi.Event.SUCCESS)
def _summary(task: TelemetryMart) -> None:
    rows = ClickHouse().query("telemetry/day_counts", day=task.date)
    counts = rows[0] if rows else {"rows": 0, "users": 0, "unknown_to_crm": 0, "actions": 0}
    Notifier().send(
        f"✅ telemetry mart {task.date}: {counts['rows']} rows, {counts['users']} users, "
        f"{counts['actions']} actions; {counts['unknown_to_crm']} row(s) of users unknown to the "
        "CRM (kept with empty CRM fields)",
        kind="summary",
    )
