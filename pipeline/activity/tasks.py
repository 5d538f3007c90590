"""User activity ETL of the feed and messenger app: daily for yesterday into ClickHouse
``test.activity_daily``.

::

    ExtractFeed ─────┐                  ┌─> SliceActivity(os) ─────┐
                     ├─> JoinActivity ──┼─> SliceActivity(gender) ─┼─> LoadActivity <- ActivityDaily
    ExtractMessages ─┘                  └─> SliceActivity(age) ────┘     (all per date)

- The two extracts run in parallel (``--workers 2``), each one aggregation in ClickHouse per
  user (views, likes / messages sent and received, distinct people each way) — raw rows never
  leave ClickHouse.
- ``JoinActivity`` and the slices are pure pandas (``pipeline.activity.transform``) on one row
  per user.
- ``LoadActivity`` replaces the day in ``test.activity_daily`` (its month rebuilt in a stage and
  swapped in), so the table grows by a day per run and a rerun of a day leaves it unchanged.
  A day without events loads no rows (and replaces whatever the day had).

Work files: ``var/activity/<date>/`` (no personal data: ids, counts, attributes).

Completeness decides completion: every output of a day records the day's inputs (rows and
latest event per source table, ``activity/day_inputs``); late events make the day incomplete and
the next run recomputes it from the sources, replacing it. ``ActivityCatchUp`` (cron) covers the
last ``PIPELINE_CATCHUP_DAYS`` days; ``--force`` recomputes a complete day.

    luigi --module pipeline.activity activity.ActivityDaily --date 2024-01-15 --workers 2
    luigi --module pipeline.activity activity.ActivityDaily --date 2024-01-15 --force
    luigi --module pipeline.activity activity.ActivityCatchUp --workers 2   # the last 7 days
    luigi --module pipeline.activity RangeDaily --of activity.ActivityDaily \\
        --start 2024-01-01 --stop 2024-02-01                      # a backfill
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

import luigi
import pandas as pd

from config.settings import load_settings
from monitoring.metrics import record_rows
from pipeline.activity.contract import SOURCE_TABLES_DDL, TABLE
from pipeline.activity.transform import (
    DIMENSIONS,
    FEED_COLUMNS,
    MESSAGE_COLUMNS,
    TABLE_COLUMNS,
    join_users,
    slice_by,
)
from pipeline.core import periods
from pipeline.core.tasks import PeriodTask, PeriodWrapper, daily_retry_count, yesterday
from pipeline.core.workfiles import (
    WorkFileTarget,
    day_work_file,
    inputs_of,
    read_frame,
    write_frame,
)
from pipeline.systems.clickhouse import ClickHouse, csv_chunks, replace_day

DATE_HELP = "The day (UTC) of the events; default: yesterday."
OUTPUT = "clickhouse test.activity_daily"


def day_inputs(date: dt.date) -> periods.Inputs:
    """What a day is computed from: per source table, the day's rows and latest event."""
    ch = ClickHouse()
    ch.ensure(*SOURCE_TABLES_DDL)
    return {
        r["source"]: {"rows": int(r["rows"]), "max_time": int(r["max_time"])}
        for r in ch.query("activity/day_inputs", day=date)
    }


def carried(targets: list[luigi.LocalTarget]) -> periods.Inputs:
    """The inputs the work files were computed from; if they disagree (the sources changed
    between two extracts), a record no source state matches, so the next run recomputes."""
    found = [inputs_of(t) for t in targets]
    first = found[0][0] if found[0] else {}
    if all(f is not None and f[0] == first for f in found):
        return first
    return {"inconsistent": [f[0] if f else None for f in found]}


class ActivityTask(PeriodTask):
    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)
    retry_count = daily_retry_count()  # [scheduler] retry_delay apart

    def current(self) -> periods.Inputs:
        return day_inputs(self.date)

    def work_file(self, name: str) -> WorkFileTarget:
        return day_work_file("activity", self.date, name, self.current, self.forced)


class ExtractPerUser(ActivityTask):
    """One side of the day per user, aggregated in ClickHouse (a named statement)."""

    statement = ""
    columns: ClassVar[list[str]] = []
    file = ""
    side = ""

    def output(self) -> WorkFileTarget:
        return self.work_file(self.file)

    def run(self) -> None:
        inputs = self.current()  # before the rows: a change in between is seen next run
        frame = ClickHouse().frame(self.statement, day=self.date)
        write_frame(frame.reindex(columns=self.columns), self.output(), inputs, self.forced)
        self.progress(f"{len(frame)} {self.side} users on {self.date}", 100)


class ExtractFeed(ExtractPerUser):
    """Views and likes per user for the day."""

    statement = "activity/extract_feed"
    columns = FEED_COLUMNS
    file = "feed.parquet"
    side = "feed"


class ExtractMessages(ExtractPerUser):
    """Messages sent / received and distinct people each way per user for the day."""

    statement = "activity/extract_messages"
    columns = MESSAGE_COLUMNS
    file = "messages.parquet"
    side = "messenger"


class JoinActivity(ActivityTask):
    """One row per user: both sides joined, zeros where a side is missing."""

    def requires(self) -> dict[str, ActivityTask]:
        day = {"date": self.date, "forced": self.forced}
        return {"feed": ExtractFeed(**day), "messages": ExtractMessages(**day)}

    def output(self) -> WorkFileTarget:
        return self.work_file("users.parquet")

    def run(self) -> None:
        feed, messages = self.input()["feed"], self.input()["messages"]
        users = join_users(read_frame(feed), read_frame(messages))
        write_frame(users, self.output(), carried([feed, messages]), self.forced)
        self.progress(f"{len(users)} users on {self.date}", 100)


class SliceActivity(ActivityTask):
    """The day's metrics per value of one dimension (os, gender or age)."""

    dimension = luigi.ChoiceParameter(
        choices=DIMENSIONS, description="The attribute to slice by: " + ", ".join(DIMENSIONS) + "."
    )

    def requires(self) -> JoinActivity:
        return JoinActivity(date=self.date, forced=self.forced)

    def output(self) -> WorkFileTarget:
        return self.work_file(f"slice_{self.dimension}.parquet")

    def run(self) -> None:
        users = read_frame(self.input())
        sliced = slice_by(users, self.dimension, self.date)
        write_frame(sliced, self.output(), carried([self.input()]), self.forced)


class LoadActivity(ActivityTask):
    """The day's rows of ``test.activity_daily``, replaced as a whole."""

    resources = {"activity_daily": 1}  # two days of one month must not swap concurrently

    def requires(self) -> list[SliceActivity]:
        return [SliceActivity(date=self.date, dimension=d, forced=self.forced) for d in DIMENSIONS]

    def output(self) -> periods.InputsTarget:
        return periods.InputsTarget(
            "activity", OUTPUT, self.date.isoformat(), self.current, self.forced
        )

    def run(self) -> None:
        inputs = carried(self.input())
        rows = pd.concat(
            [read_frame(t) for t in self.input()],
            ignore_index=True,
        )[TABLE_COLUMNS]
        check_counts(rows, inputs, self.date)
        ch = ClickHouse()
        ch.execute("activity/create_activity_daily")
        replace_day(
            ch,
            "test",
            TABLE,
            "event_date",
            self.date,
            csv_chunks(rows.itertuples(index=False, name=None)),
            expected_rows=len(rows),
        )
        periods.write_now("activity", OUTPUT, self.date.isoformat(), inputs, self.forced, len(rows))
        record_rows("activity", TABLE, written=len(rows))
        self.progress(f"{len(rows)} rows for {self.date}", 100)


def check_counts(rows: pd.DataFrame, inputs: periods.Inputs, date: dt.date) -> None:
    """Every slice accounts for every event of the day: per dimension, views + likes is the
    day's feed actions and messages sent the day's messages (the extracts count them all)."""
    if "inconsistent" in inputs:
        return  # the sources changed during the run: recomputed next run, checked then
    want = {
        "views + likes": inputs.get("feed_actions", {}).get("rows", 0),
        "messages sent": inputs.get("message_actions", {}).get("rows", 0),
    }
    for dimension, part in rows.groupby("dimension"):
        got = {
            "views + likes": int(part["views"].sum() + part["likes"].sum()),
            "messages sent": int(part["messages_sent"].sum()),
        }
        if got != want:
            raise RuntimeError(
                f"activity {date}: the {dimension} slice counts {got}, the sources hold {want};"
                " the day is not loaded"
            )


class ActivityDaily(PeriodWrapper):
    """The activity ETL for one day (default: yesterday)."""

    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)

    def requires(self) -> LoadActivity:
        return LoadActivity(date=self.date, forced=self.force_token)


class ActivityCatchUp(PeriodWrapper):
    """The last ``days`` days (cron): a night the machine was down, or a day late events
    changed, is done by the next run; a day already complete costs one check."""

    days = luigi.IntParameter(
        default=load_settings().flows.catchup_days,
        description="How many days back, yesterday (UTC) included; default"
        f" {load_settings().flows.catchup_days} (setting PIPELINE_CATCHUP_DAYS).",
    )

    def requires(self) -> list[ActivityDaily]:
        last = yesterday()
        return [
            ActivityDaily(date=last - dt.timedelta(days=i), force=self.force)
            for i in reversed(range(self.days))
        ]
