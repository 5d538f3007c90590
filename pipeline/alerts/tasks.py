"""Anomaly alerts on the feed and messenger app's key metrics, every 15 minutes.

For the last complete 15-minute slot (UTC), the check reads the metrics of the feed (active
users, views, likes, CTR) and the messenger (active users, messages sent), overall and per value
of each configured slice (``config/alerts.toml``: os by default), over the history the detector
needs, and decides per metric x slice with ``pipeline.alerts.detector``. Per metric x slice a
state in PostgreSQL (``ops.alert_state``: open anomaly, last alert, last slot decided) makes an
anomaly alert once, again only after the cooldown while it lasts, and send one recovery message
when it ends. A message carries the metric, slice, current value, deviation, links to a
dashboard and a chart, the responsible person's mention, and a chart of today against yesterday,
as one picture with its caption.

Record first: the new state and the message's record in the notification ledger
(``ops.notifications``) commit in one transaction before the message is sent; it is marked sent
after. A run killed in between is finished by the next check (at-least-once: a message may come
twice after such a crash, never not at all). ClickHouse ``ops.alerts`` (the dashboards' copy) is
rebuilt from the ledger, the slot's month replaced by stage and swap, so a failed insert there
never loses the record of a message people received. Redis holds nothing of it.

    luigi --module pipeline.alerts alerts.AlertCheck                  # the last complete slot
    luigi --module pipeline.alerts alerts.AlertCheck --slot 2024-01-17T1415
    luigi --module pipeline.alerts alerts.AlertReplay --start 2024-01-17T0000 --end 2024-01-18T0000
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tomllib
from pathlib import Path
from typing import Any

import luigi
import pandas as pd

from config.settings import load_settings
from monitoring.metrics import record_alert
from pipeline.alerts.contract import (
    ALERTS_TABLE,
    MESSAGE_KINDS,
    METRICS,
    SENSITIVITY_KEYS,
    SLOT,
    SLOT_STATEMENTS,
    SOURCE_TABLES_DDL,
    STATE_TABLE,
    AlertConfig,
    MetricConfig,
)
from pipeline.alerts.detector import AlertState, Sensitivity, detect, history, transition
from pipeline.alerts.transform import (
    alert_details,
    alert_rows,
    message,
    name_slices,
    series_for,
    stack_metrics,
    today_vs_yesterday,
)
from pipeline.core import notifications
from pipeline.core.notifications import Key, Message
from pipeline.core.tasks import PipelineTask
from pipeline.systems import postgres
from pipeline.systems.clickhouse import (
    ClickHouse,
    ClickHouseMarkerTarget,
    csv_chunks,
    replace_partition,
)
from pipeline.systems.postgres import transaction


def sensitivity_of(spec: dict[str, Any], raw: dict[str, Any]) -> Sensitivity:
    """The detector's defaults for every metric; a key in the metric's section overrides one."""
    overrides: dict[str, Any] = {key: float(spec[key]) for key in SENSITIVITY_KEYS if key in spec}
    chosen = dataclasses.replace(Sensitivity(), **overrides)
    if "history_days" in raw:
        chosen = dataclasses.replace(chosen, days=int(raw["history_days"]))
    return chosen


def read_window(config: AlertConfig) -> pd.Timedelta:
    """The history a check reads: enough that the decision on a slot is the one a replay of
    the whole series makes (the detector is causal; ``history`` says how far back it looks)."""
    return max(
        (history(SLOT, m.sensitivity) for m in config.metrics.values()), default=history(SLOT)
    )


def load_config(path: Path | None = None) -> AlertConfig:
    """The alert config file (``contract.CONFIG_KEYS``; a metric's section ``METRIC_KEYS``):
    the metrics checked, how sensitively, and the message's links; defaults for a key absent."""
    path = path or load_settings().flows.alerts_config
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    metrics = {}
    for name, spec in raw.get("metrics", {}).items():
        if name not in METRICS:
            raise ValueError(f"{path}: unknown metric {name!r} (known: {', '.join(METRICS)})")
        metrics[name] = MetricConfig(
            label=spec.get("label", name),
            sensitivity=sensitivity_of(spec, raw),
            mention=spec.get("mention", ""),
        )
    return AlertConfig(
        metrics=metrics,
        slices=tuple(raw.get("slices", ["os"])),
        cooldown=pd.Timedelta(minutes=int(raw.get("cooldown_minutes", 120))),
        history_days=int(raw.get("history_days", 7)),
        dashboard_url=raw.get("dashboard_url", ""),
        chart_url=raw.get("chart_url", ""),
    )


def last_complete_slot(now: dt.datetime | None = None) -> dt.datetime:
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    floored = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    return floored - dt.timedelta(minutes=15)


# -- reading the metrics ----------------------------------------------------------------------
def metric_frames(
    ch: ClickHouse, start: pd.Timestamp, end: pd.Timestamp, slices: tuple[str, ...]
) -> pd.DataFrame:
    """Long frame: slot, slice, metric, value over [start, end) (slots with data only)."""
    window = {"start": f"{start:%Y-%m-%d %H:%M:%S}", "end": f"{end:%Y-%m-%d %H:%M:%S}"}
    parts = []
    for total, by in SLOT_STATEMENTS:
        frames = [ch.frame(total, **window)]
        for dimension in slices:
            frames.append(name_slices(ch.frame(by, dimension=dimension, **window), dimension))
        parts.append(pd.concat(frames, ignore_index=True))
    feed, messages = parts
    return stack_metrics(feed, messages)


# -- the state (PostgreSQL) -------------------------------------------------------------------
def ensure_tables() -> None:
    """``ops.alert_state`` and the ledger (once per process and database)."""
    notifications.ensure_table()
    postgres.ensure_table_once(STATE_TABLE, "alerts/create_alert_state")


def _ts(value: Any) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)


def load_states() -> dict[tuple[str, str], tuple[AlertState, pd.Timestamp | None]]:
    """Every series' state and the last slot it decided."""
    with transaction() as cur:
        postgres.run(cur, "alerts/alert_states")
        found = cur.fetchall()
    return {
        (metric, slice_): (AlertState(since=_ts(since), last_alert=_ts(last)), _ts(checked))
        for metric, slice_, since, last, checked in found
    }


def write_state(cur: Any, metric: str, slice_: str, state: AlertState, slot: pd.Timestamp) -> None:
    def plain(value: pd.Timestamp | None) -> dt.datetime | None:
        return None if value is None else value.to_pydatetime()

    postgres.run(
        cur,
        "alerts/write_alert_state",
        {
            "metric": metric,
            "slice": slice_,
            "since": plain(state.since),
            "last_alert": plain(state.last_alert),
            "checked": plain(slot),
        },
    )


def period_of(slot: pd.Timestamp) -> str:
    """A slot as a ledger period: ISO text, so a range of text is a range of time."""
    return f"{slot:%Y-%m-%dT%H:%M}"


def sync_alerts(ch: ClickHouse, months: set[str]) -> int:
    """ClickHouse ``ops.alerts`` for ``months`` ("YYYY-MM") rebuilt from the ledger's sent
    alert messages, each month replaced by stage and swap: the copy is exact however often it
    runs, and an insert that failed is made good by the next check."""
    total = 0
    for month in sorted(months):
        start = dt.date.fromisoformat(f"{month}-01")
        end = (start + dt.timedelta(days=32)).replace(day=1)
        with transaction() as cur:
            postgres.run(
                cur,
                "ops/notifications_between",
                {
                    "flow": "alerts",
                    "kinds": list(MESSAGE_KINDS),
                    "start": f"{start:%Y-%m}",
                    "end": f"{end:%Y-%m}",
                },
            )
            rows = alert_rows(cur.fetchall())
        replace_partition(
            ch, *ALERTS_TABLE, int(f"{start:%Y%m}"), csv_chunks(rows), expected_rows=len(rows)
        )
        total += len(rows)
    return total


def check_slot(
    slot: pd.Timestamp, config: AlertConfig | None = None, metrics: pd.DataFrame | None = None
) -> list[dict[str, Any]]:
    """Decide every metric x slice for ``slot``; send and record what changed. Returns the
    messages sent (kind, metric, slice, text). A slot already checked is skipped per series.
    ``metrics`` (``metric_frames`` over a longer range, read once by a replay) is cut to the
    window the live check reads, so both decide on the same data."""
    config = config or load_config()
    ch = ClickHouse()
    ch.ensure(*SOURCE_TABLES_DDL)
    ch.execute("ops/create_alerts")
    ensure_tables()
    # Messages a killed run recorded and may not have sent: sent now (at-least-once).
    months = {k.period[:7] for k, _ in notifications.deliver_unsettled("alerts")}
    if months:
        sync_alerts(ch, months)
    start = slot - read_window(config)
    if metrics is None:
        frame = metric_frames(ch, start, slot + SLOT, config.slices)
    else:
        frame = metrics[(metrics["slot"] >= start) & (metrics["slot"] < slot + SLOT)]
    if frame.empty:
        return []
    first = frame["slot"].min()
    sent: list[dict[str, Any]] = []
    states = load_states()
    quiet: list[tuple[str, str, AlertState]] = []
    for metric, spec in config.metrics.items():
        for slice_ in sorted(frame.loc[frame["metric"] == metric, "slice"].unique()):
            state, checked = states.get((metric, slice_), (AlertState(), None))
            if checked is not None and checked >= slot:
                continue  # this slot (or a later one) was decided already
            series = series_for(frame, metric, slice_, start, slot, first)
            decision = detect(series, SLOT, spec.sensitivity).loc[slot]
            new_state, kind = transition(
                state,
                bool(decision["anomalous"]),
                slot,
                config.cooldown,
                hit=bool(decision.get("hit", decision["anomalous"])),
            )
            if not kind:
                quiet.append((metric, slice_, new_state))
                continue
            since = state.since if kind == "recovery" else new_state.since
            text = message(kind, metric, slice_, config, decision, since, slot)
            key = Key(kind, "alerts", period_of(slot), metric, slice_)
            note = Message(
                text,
                photo=today_vs_yesterday(series, slot, f"{spec.label}, {slice_}"),
                label=f"alert-{kind}",
                details=alert_details(decision, since),
            )
            # Record first: the state and the message's record commit together, then it is sent.
            with transaction() as cur:
                write_state(cur, metric, slice_, new_state, slot)
                recorded = notifications.record_with(cur, key, note)
            if recorded:
                notifications.send_recorded(key, note)
            sent.append({"kind": kind, "metric": metric, "slice": slice_, "text": text})
            record_alert(metric, kind)
    if quiet:
        with transaction() as cur:
            for metric, slice_, new_state in quiet:
                write_state(cur, metric, slice_, new_state, slot)
    if sent:
        sync_alerts(ch, {period_of(slot)[:7]})
    return sent


class AlertCheck(PipelineTask):
    """The check of one 15-minute slot (default: the last complete one)."""

    worker_timeout = load_settings().flows.alerts_task_timeout_s  # within the 15-minute cadence

    slot = luigi.DateMinuteParameter(
        interval=15,
        default=last_complete_slot(),
        description="The slot's start, UTC (YYYY-MM-DDTHHMM, a quarter hour);"
        " default: the last complete slot.",
    )

    def output(self) -> ClickHouseMarkerTarget:
        return ClickHouseMarkerTarget("alert_check", self.slot.isoformat())

    def run(self) -> None:
        sent = check_slot(pd.Timestamp(self.slot))
        self.output().touch(len(sent))
        self.progress(json.dumps([f"{s['kind']} {s['metric']} {s['slice']}" for s in sent]), 100)


class AlertReplay(PipelineTask):
    """Every slot of [start, end) checked in order, as the live check would have (a backfill,
    the demo)."""

    worker_timeout = load_settings().flows.task_timeout_s

    start = luigi.DateMinuteParameter(
        interval=15, description="The first slot, UTC (YYYY-MM-DDTHHMM, a quarter hour)."
    )
    end = luigi.DateMinuteParameter(
        interval=15, description="The slot after the last one checked, UTC (YYYY-MM-DDTHHMM)."
    )

    def output(self) -> ClickHouseMarkerTarget:
        return ClickHouseMarkerTarget(
            "alert_replay", f"{self.start:%Y%m%dT%H%M}-{self.end:%Y%m%dT%H%M}"
        )

    def run(self) -> None:
        config = load_config()
        slots = pd.date_range(self.start, self.end, freq=SLOT, inclusive="left")
        metrics = metric_frames(
            ClickHouse(), slots[0] - read_window(config), slots[-1] + SLOT, config.slices
        )
        total = 0
        for i, slot in enumerate(slots, start=1):
            total += len(check_slot(slot, config, metrics))
            if i % 8 == 0:
                self.progress(
                    f"{slot:%Y-%m-%d %H:%M}: {total} message(s) so far", 100 * i / len(slots)
                )
        self.output().touch(total)
