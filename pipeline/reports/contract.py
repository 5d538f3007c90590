"""What the morning reports flow reads and writes, declared once.

Reads ClickHouse ``simulator.feed_actions`` and ``simulator.message_actions``, the app's events
(declared by the activity flow, their first reader: ``pipeline/activity/contract.py``), through
``sql/clickhouse/feed_daily.sql``, ``app_daily.sql`` and ``new_users.sql``: the report's day and
the ``WINDOW_DAYS`` before it (UTC days).

Writes, per report and day, its text and picture under ``<runtime>/reports/<date>/`` (setting
``paths.reports``), and sends the report once: its record in the notification ledger
(PostgreSQL ``ops.notifications``, key ``report | reports | <date> | <report>``) and what the
report was built from in ``ops.period_inputs`` (flow ``reports``, output = the report's name).
"""

from __future__ import annotations

# The app's event tables, created by a report when missing (an empty database: zeros, no error).
from pipeline.activity.contract import SOURCE_TABLES_DDL as SOURCE_TABLES_DDL

# Days read before the report's day: the picture's 7 days, and the day a week before it.
WINDOW_DAYS = 7

# The reports, and the named statements each reads.
FEED_REPORT = "feed"
APP_REPORT = "app"
FEED_STATEMENT = "reports/feed_daily"
APP_STATEMENTS = ("reports/app_daily", "reports/new_users")

# Kept per report and day under <runtime>/reports/<date>/: the text and the picture as sent.
# Business figures, no personal data: readable by everyone (mode 0644).
TEXT_FILE = "{report}.txt"
PICTURE_FILE = "{report}.png"
KEPT_FILE_MODE = 0o644

# The flow's name in the notification ledger and the period record; the kind of its messages,
# and their label (the outbox file's name: ``…-report-feed-….json``). Failures are the task
# base class's (kind ``failure``).
FLOW = "reports"
NOTIFICATION_KIND = "report"
LABEL = "report-{report}"
