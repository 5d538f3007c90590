"""Morning reports of the feed and messenger app: at 11:00 for yesterday, to Telegram or the
outbox.

- ``FeedReport(date)``: DAU, views, likes, CTR with changes against the day before and a week
  before, and a picture of the last 7 days.
- ``AppReport(date)``: feed-only / messenger-only / both users, messages per sender, new users by
  source, and the same 7-day picture.

Each report's text and picture are also kept under ``var/reports/<date>/``. A report is sent once
per day: a marker in Redis (``markers:report:<name>:<date>``, kept 30 days) makes a rerun a no-op;
``--resend`` sends it again.

    luigi --module pipeline.reports reports.MorningReports --date 2024-01-15
    luigi --module pipeline.reports reports.FeedReport --date 2024-01-15 --resend
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import luigi
import pandas as pd

from config.settings import load_settings
from flags.targets import RedisMarkerTarget
from pipeline.activity.contract import SOURCE_TABLES_DDL
from pipeline.core.files import atomic_write
from pipeline.core.tasks import PipelineTask, yesterday
from pipeline.reports.transform import (
    APP_METRICS,
    FEED_METRICS,
    app_frame,
    app_text,
    chart,
    feed_frame,
    feed_text,
)
from pipeline.systems.clickhouse import ClickHouse
from pipeline.systems.telegram import Notifier

MARKER_TTL = dt.timedelta(days=30)
DATE_HELP = "The day (UTC) the report is about; default: yesterday."
RESEND_HELP = "Send the report again even if it was sent for this day already."


def report_dir(date: dt.date) -> Path:
    return load_settings().paths.reports / date.isoformat()


def keep(path: Path, data: bytes) -> None:
    atomic_write(path, data, mode=0o644)  # business figures, no personal data


class Report(PipelineTask):
    """A report built from ClickHouse and sent once for its day."""

    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)
    resend = luigi.BoolParameter(default=False, significant=False, description=RESEND_HELP)
    name = "report"

    def output(self) -> RedisMarkerTarget:
        return RedisMarkerTarget(f"report:{self.name}:{self.date.isoformat()}", ttl=MARKER_TTL)

    _sent = False  # by this process: a resend counts as done once it has run

    def complete(self) -> bool:
        if self.resend and not self._sent:
            return False
        return self.output().exists()

    def window(self) -> dict[str, dt.date]:
        # 8 days: the 7 of the picture and the day a week before the report's day.
        return {"start": self.date - dt.timedelta(days=7), "end": self.date}

    def build(self) -> tuple[str, bytes]:
        raise NotImplementedError

    def run(self) -> None:
        ClickHouse().ensure(*SOURCE_TABLES_DDL)
        text, png = self.build()
        folder = report_dir(self.date)
        keep(folder / f"{self.name}.txt", text.encode("utf-8"))
        keep(folder / f"{self.name}.png", png)
        notifier = Notifier()
        notifier.send(text, kind=f"report-{self.name}")
        notifier.send_photo(
            png, f"{self.name} report, 7 days to {self.date}", kind=f"report-{self.name}"
        )
        self.output().touch()
        self._sent = True
        self.progress(f"{self.name} report for {self.date} sent", 100)


class FeedReport(Report):
    name = "feed"

    def build(self) -> tuple[str, bytes]:
        frame = feed_frame(ClickHouse().frame("reports/feed_daily", **self.window()))
        if frame.empty:
            frame = pd.DataFrame(columns=["day", *(m for m, _ in FEED_METRICS)])
        return feed_text(frame, self.date), chart(frame, self.date, FEED_METRICS, "Feed")


class AppReport(Report):
    name = "app"

    def build(self) -> tuple[str, bytes]:
        ch = ClickHouse()
        frame = app_frame(
            ch.frame("reports/app_daily", **self.window()),
            ch.frame("reports/new_users", **self.window()),
        )
        return app_text(frame, self.date), chart(frame, self.date, APP_METRICS, "App")


class MorningReports(luigi.WrapperTask):
    """Both reports for one day (default: yesterday); cron runs it at 11:00."""

    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)
    resend = luigi.BoolParameter(default=False, significant=False, description=RESEND_HELP)

    def requires(self) -> list[Report]:
        return [
            FeedReport(date=self.date, resend=self.resend),
            AppReport(date=self.date, resend=self.resend),
        ]
