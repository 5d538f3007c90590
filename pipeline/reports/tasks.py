"""Morning reports of the feed and messenger app: at 11:00 for yesterday, to Telegram or the
outbox.

- ``FeedReport(date)``: DAU, views, likes, CTR with changes against the day before and a week
  before, and a picture of the last 7 days.
- ``AppReport(date)``: feed-only / messenger-only / both users, messages per sender, new users by
  source, and the same 7-day picture.

Each report's text and picture are also kept under ``var/reports/<date>/``. A report is one
message, its picture with the text as the caption (Telegram's 1,024 characters), so it never
half-arrives. It is sent once per day through the notification ledger (PostgreSQL
``ops.notifications``, key ``report | reports | <date> | <name>``): a rerun, a flushed Redis or a
catch-up sends nothing new; ``--resend`` sends it again; ``--force`` rebuilds the kept files
without sending. Delivery policy: at-least-once (a run killed between sending and recording it
sends it again).

    luigi --module pipeline.reports reports.MorningReports --date 2024-01-15
    luigi --module pipeline.reports reports.FeedReport --date 2024-01-15 --resend
    luigi --module pipeline.reports reports.ReportsCatchUp          # the last 7 days (cron)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import luigi
import pandas as pd

from config.settings import load_settings
from pipeline.core import notifications, periods
from pipeline.core.files import atomic_write
from pipeline.core.notifications import Key, Message
from pipeline.core.tasks import RESENT_HELP, PeriodTask, PeriodWrapper, yesterday
from pipeline.reports.contract import (
    APP_REPORT,
    APP_STATEMENTS,
    FEED_REPORT,
    FEED_STATEMENT,
    FLOW,
    KEPT_FILE_MODE,
    LABEL,
    NOTIFICATION_KIND,
    PICTURE_FILE,
    SOURCE_TABLES_DDL,
    TEXT_FILE,
    WINDOW_DAYS,
)
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
from pipeline.systems.telegram import CAPTION_LIMIT

DATE_HELP = "The day (UTC) the report is about; default: yesterday."
RESEND_HELP = "Send the report again even if it was sent for this day already."


def report_dir(date: dt.date) -> Path:
    """Where a day's reports are kept: ``<runtime>/reports/<date>/``."""
    return load_settings().paths.reports / date.isoformat()


def keep(path: Path, data: bytes) -> None:
    atomic_write(path, data, mode=KEPT_FILE_MODE)  # business figures, no personal data


class Report(PeriodTask):
    """A report built from ClickHouse and sent once for its day (the notification ledger)."""

    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)
    resend = luigi.BoolParameter(default=False, significant=False, description=RESEND_HELP)
    resent = luigi.Parameter(default="", significant=False, description=RESENT_HELP)
    name = "report"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # --resend on the report itself: a token of its own (the wrapper's otherwise).
        self.resend_token = self.resent or (periods.new_token() if self.resend else "")

    def key(self) -> Key:
        return Key(NOTIFICATION_KIND, FLOW, self.date.isoformat(), self.name)

    def built(self) -> periods.InputsTarget:
        """The kept text and picture, rebuilt by a forced run (nothing to compare: a report
        is about its day as it was when sent)."""
        return periods.InputsTarget(FLOW, self.name, self.date.isoformat(), dict, self.forced)

    def complete(self) -> bool:
        if self.forced and not self.built().exists():
            return False
        return notifications.settled(self.key(), self.resend_token)

    def window(self) -> dict[str, dt.date]:
        # 8 days: the 7 of the picture and the day a week before the report's day.
        return {"start": self.date - dt.timedelta(days=WINDOW_DAYS), "end": self.date}

    def build(self) -> tuple[str, bytes]:
        raise NotImplementedError

    def run(self) -> None:
        ClickHouse().ensure(*SOURCE_TABLES_DDL)
        text, png = self.build()
        if len(text) > CAPTION_LIMIT:
            raise ValueError(
                f"{self.name} report for {self.date}: {len(text)} characters, over the"
                f" {CAPTION_LIMIT} of a picture's caption: shorten the text"
            )
        folder = report_dir(self.date)
        keep(folder / TEXT_FILE.format(report=self.name), text.encode("utf-8"))
        keep(folder / PICTURE_FILE.format(report=self.name), png)
        outcome = notifications.deliver(
            self.key(),
            Message(text, photo=png, label=LABEL.format(report=self.name)),
            self.resend_token,
        )
        periods.write_now(FLOW, self.name, self.date.isoformat(), {}, self.forced)
        self.progress(f"{self.name} report for {self.date}: {outcome}", 100)


class FeedReport(Report):
    name = FEED_REPORT

    def build(self) -> tuple[str, bytes]:
        frame = feed_frame(ClickHouse().frame(FEED_STATEMENT, **self.window()))
        if frame.empty:
            frame = pd.DataFrame(columns=["day", *(m for m, _ in FEED_METRICS)])
        return feed_text(frame, self.date), chart(frame, self.date, FEED_METRICS, "Feed")


class AppReport(Report):
    name = APP_REPORT

    def build(self) -> tuple[str, bytes]:
        ch = ClickHouse()
        frame = app_frame(*(ch.frame(name, **self.window()) for name in APP_STATEMENTS))
        return app_text(frame, self.date), chart(frame, self.date, APP_METRICS, "App")


class MorningReports(PeriodWrapper):
    """Both reports for one day (default: yesterday)."""

    date = luigi.DateParameter(default=yesterday(), description=DATE_HELP)
    resend = luigi.BoolParameter(default=False, significant=False, description=RESEND_HELP)

    def requires(self) -> list[Report]:
        day = {"date": self.date, "forced": self.force_token, "resent": self.resend_token}
        return [FeedReport(**day), AppReport(**day)]


class ReportsCatchUp(PeriodWrapper):
    """The reports of the last ``days`` days (cron, 11:00 Moscow): a morning the machine was
    down gets its reports late, dated; a day already reported costs one check."""

    days = luigi.IntParameter(
        default=load_settings().flows.catchup_days,
        description="How many days back, yesterday (UTC) included; default"
        f" {load_settings().flows.catchup_days} (setting PIPELINE_CATCHUP_DAYS).",
    )

    def requires(self) -> list[MorningReports]:
        last = yesterday()
        return [
            MorningReports(date=last - dt.timedelta(days=i), force=self.force)
            for i in reversed(range(self.days))
        ]
