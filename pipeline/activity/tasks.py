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

    luigi --module pipeline.activity activity.ActivityDaily --date 2024-01-15 --workers 2
    luigi --module pipeline.activity RangeDaily --of activity.ActivityDaily \\
        --start 2024-01-01 --stop 2024-02-01                      # a backfill
"""

from __future__ import annotations

from typing import ClassVar

import luigi
import pandas as pd

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
from pipeline.core.tasks import PipelineTask, daily_retry_count, yesterday
from pipeline.core.workfiles import day_target, read_frame, write_frame
from pipeline.systems.clickhouse import ClickHouse, ClickHouseMarkerTarget, csv_chunks, replace_day

DATE_HELP = "The day (UTC) of the events; default: yesterday."


class ActivityTask(PipelineTask):
    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)
    retry_count = daily_retry_count()  # [scheduler] retry_delay apart


class ExtractPerUser(ActivityTask):
    """One side of the day per user, aggregated in ClickHouse (a named statement)."""

    statement = ""
    columns: ClassVar[list[str]] = []
    file = ""
    side = ""

    def output(self) -> luigi.LocalTarget:
        return day_target("activity", self.date, self.file)

    def run(self) -> None:
        ClickHouse().ensure(*SOURCE_TABLES_DDL)
        frame = ClickHouse().frame(self.statement, day=self.date)
        write_frame(frame.reindex(columns=self.columns), self.output())
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
        return {"feed": ExtractFeed(date=self.date), "messages": ExtractMessages(date=self.date)}

    def output(self) -> luigi.LocalTarget:
        return day_target("activity", self.date, "users.parquet")

    def run(self) -> None:
        users = join_users(read_frame(self.input()["feed"]), read_frame(self.input()["messages"]))
        write_frame(users, self.output())
        self.progress(f"{len(users)} users on {self.date}", 100)


class SliceActivity(ActivityTask):
    """The day's metrics per value of one dimension (os, gender or age)."""

    dimension = luigi.ChoiceParameter(
        choices=DIMENSIONS, description="The attribute to slice by: " + ", ".join(DIMENSIONS) + "."
    )

    def requires(self) -> JoinActivity:
        return JoinActivity(date=self.date)

    def output(self) -> luigi.LocalTarget:
        return day_target("activity", self.date, f"slice_{self.dimension}.parquet")

    def run(self) -> None:
        users = read_frame(self.input())
        write_frame(slice_by(users, self.dimension, self.date), self.output())


class LoadActivity(ActivityTask):
    """The day's rows of ``test.activity_daily``, replaced as a whole."""

    resources = {"activity_daily": 1}  # two days of one month must not swap concurrently

    def requires(self) -> list[SliceActivity]:
        return [SliceActivity(date=self.date, dimension=d) for d in DIMENSIONS]

    def output(self) -> ClickHouseMarkerTarget:
        return ClickHouseMarkerTarget(TABLE, self.date.isoformat())

    def run(self) -> None:
        rows = pd.concat(
            [read_frame(t) for t in self.input()],
            ignore_index=True,
        )[TABLE_COLUMNS]
        ch = ClickHouse()
        ch.execute("activity/create_activity_daily")
        replace_day(
            ch,
            "test",
            TABLE,
            "event_date",
            self.date,
            csv_chunks(rows.itertuples(index=False, name=None)),
        )
        self.output().touch(len(rows))
        record_rows("activity", TABLE, written=len(rows))
        self.progress(f"{len(rows)} rows for {self.date}", 100)


class ActivityDaily(luigi.WrapperTask):
    """The activity ETL for one day (default: yesterday)."""

    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)

    def requires(self) -> LoadActivity:
        return LoadActivity(date=self.date)
