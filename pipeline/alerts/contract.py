"""What the alerts flow reads and writes, declared once.

Reads ClickHouse ``simulator.feed_actions`` and ``simulator.message_actions``, the app's events
(declared by the activity flow, their first reader: ``pipeline/activity/contract.py``), as
metrics per 15-minute slot, overall and per value of each configured slice
(``sql/clickhouse/feed_slots*.sql``, ``message_slots*.sql``). Reads the alert config
(``config/alerts.toml``, setting ``PIPELINE_ALERTS_CONFIG``): its keys are below.

Writes PostgreSQL ``ops.alert_state`` (``sql/postgres/create_alert_state.sql``): per metric x
slice the open anomaly, the last alert and the last slot decided; the messages' record in the
notification ledger ``ops.notifications`` (flow ``alerts``, kinds ``MESSAGE_KINDS``); and
ClickHouse ``ops.alerts`` (``pipeline/systems/sql/clickhouse/ops/create_alerts.sql``), the
dashboards' copy of the sent messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

# The app's event tables, created by a check when missing (an empty database: no alerts).
from pipeline.activity.contract import SOURCE_TABLES_DDL as SOURCE_TABLES_DDL
from pipeline.alerts.detector import Sensitivity

# The series' grain: one value per metric x slice x 15-minute slot (UTC).
SLOT = pd.Timedelta(minutes=15)

# The metrics, by the events they come from (the statements' value columns; CTR = likes / views).
FEED = ("feed_users", "views", "likes", "ctr")
MESSENGER = ("messenger_users", "messages")
METRICS = FEED + MESSENGER

# Per source, the statements reading its slots: overall (slice "all"), and per slice value.
SLOT_STATEMENTS = (
    ("alerts/feed_slots", "alerts/feed_slots_by"),
    ("alerts/message_slots", "alerts/message_slots_by"),
)
# The metric frame the detector's series are cut from: one row per slot x slice x metric.
METRIC_COLUMNS = ("slot", "slice", "metric", "value")

# PostgreSQL: per metric x slice the open anomaly, the last alert and the last slot decided.
STATE_TABLE = "ops.alert_state"
# The messages a check sends (the ledger's kinds, ClickHouse ops.alerts' ``kind``).
MESSAGE_KINDS = ("alert", "repeat", "recovery")
# A message's figures, kept in the ledger's details and copied to ClickHouse ops.alerts.
DETAIL_FIELDS = ("value", "baseline", "lower", "upper", "change")
# ClickHouse ``ops.alerts`` (database, table), partitioned by the slot's month.
ALERTS_TABLE = ("ops", "alerts")

# The config file's top-level keys, its per-metric section's keys (``[metrics.<metric>]``), and
# those of them that override the detector's sensitivity.
CONFIG_KEYS = (
    "slices",
    "cooldown_minutes",
    "history_days",
    "dashboard_url",
    "chart_url",
    "metrics",
)
METRIC_KEYS = ("label", "mention", "k", "min_change", "risk", "floor")
SENSITIVITY_KEYS = ("k", "min_change", "risk", "floor")


@dataclass(frozen=True)
class MetricConfig:
    """A metric's section of the config: its name in messages, the detector's sensitivity for
    it, and who is mentioned in its alerts."""

    label: str
    sensitivity: Sensitivity
    mention: str = ""


@dataclass(frozen=True)
class AlertConfig:
    """The alert config: the metrics checked, the slices (columns) each is checked per value of
    besides overall, how often an ongoing anomaly is alerted again, the history the detector's
    daily profile reads, and the links in the messages (``{metric}``, ``{slice}`` filled in)."""

    metrics: dict[str, MetricConfig]
    slices: tuple[str, ...] = ("os",)
    cooldown: pd.Timedelta = pd.Timedelta(minutes=120)
    history_days: int = 7
    dashboard_url: str = ""
    chart_url: str = ""
