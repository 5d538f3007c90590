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
import io
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import luigi
import pandas as pd

from config.settings import load_settings
from monitoring.metrics import record_alert
from pipeline.activity.contract import SOURCE_TABLES_DDL
from pipeline.alerts.detector import AlertState, Sensitivity, detect, history, transition
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

SLOT = pd.Timedelta(minutes=15)
FEED = ("feed_users", "views", "likes", "ctr")
MESSENGER = ("messenger_users", "messages")


@dataclass(frozen=True)
class MetricConfig:
    label: str
    sensitivity: Sensitivity
    mention: str = ""


@dataclass(frozen=True)
class AlertConfig:
    metrics: dict[str, MetricConfig]
    slices: tuple[str, ...] = ("os",)
    cooldown: pd.Timedelta = pd.Timedelta(minutes=120)
    history_days: int = 7
    dashboard_url: str = ""
    chart_url: str = ""


def sensitivity_of(spec: dict[str, Any], raw: dict[str, Any]) -> Sensitivity:
    """The detector's defaults for every metric; a key in the metric's section overrides one."""
    overrides: dict[str, Any] = {
        key: float(spec[key]) for key in ("k", "min_change", "risk", "floor") if key in spec
    }
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
    path = path or load_settings().flows.alerts_config
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    metrics = {}
    for name, spec in raw.get("metrics", {}).items():
        if name not in FEED + MESSENGER:
            raise ValueError(
                f"{path}: unknown metric {name!r} (known: {', '.join(FEED + MESSENGER)})"
            )
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
    for total, by in (
        ("alerts/feed_slots", "alerts/feed_slots_by"),
        ("alerts/message_slots", "alerts/message_slots_by"),
    ):
        frames = [ch.frame(total, **window)]
        for dimension in slices:
            sliced = ch.frame(by, dimension=dimension, **window)
            sliced["slice"] = f"{dimension}=" + sliced["slice"].astype(str)
            frames.append(sliced)
        parts.append(pd.concat(frames, ignore_index=True))
    feed, messages = parts
    if len(feed):
        feed["ctr"] = feed["likes"] / feed["views"].where(feed["views"] > 0)
    long = [
        f.melt(id_vars=["slot", "slice"], var_name="metric", value_name="value")
        for f in (feed, messages)
        if len(f)
    ]
    if not long:
        return pd.DataFrame(columns=["slot", "slice", "metric", "value"])
    out = pd.concat(long, ignore_index=True)
    out["slot"] = pd.to_datetime(out["slot"])
    return out


def series_for(
    frame: pd.DataFrame,
    metric: str,
    slice_: str,
    start: pd.Timestamp,
    slot: pd.Timestamp,
    first: pd.Timestamp,
) -> pd.Series:
    """A regular series from ``start`` to ``slot``: a slot without events is 0 (CTR: no value);
    before ``first`` (the first slot with any data) there is no history at all."""
    rows = frame[(frame["metric"] == metric) & (frame["slice"] == slice_)]
    grid = pd.date_range(start, slot, freq=SLOT)
    series = rows.set_index("slot")["value"].astype(float).reindex(grid)
    if metric != "ctr":
        series = series.fillna(0.0)
    return series.where(grid >= first)


# -- the message ------------------------------------------------------------------------------
def message(
    kind: str,
    metric: str,
    slice_: str,
    config: AlertConfig,
    decision: pd.Series,
    since: pd.Timestamp | None,
    slot: pd.Timestamp,
) -> str:
    spec = config.metrics[metric]
    value = _fmt(decision["value"], metric)
    usual = _fmt(decision.get("expected", decision["baseline"]), metric)
    band = f"{_fmt(decision['lower'], metric)}–{_fmt(decision['upper'], metric)}"
    change = decision["change"]
    deviation = "n/a" if pd.isna(change) else f"{change:+.0%}"
    links = []
    if config.chart_url:
        links.append(f"Chart: {config.chart_url.format(metric=metric, slice=slice_)}")
    if config.dashboard_url:
        links.append(f"Dashboard: {config.dashboard_url}")
    if kind == "recovery":
        head = [
            f"✅ Metric {spec.label} in slice {slice_} is back to normal"
            f" at {slot:%Y-%m-%d %H:%M} UTC (inside its expected band since then).",
            f"Current value {value}, deviation {deviation} from the expected {usual}"
            f" (band {band}); anomalous since {since:%H:%M}.",
        ]
    else:
        still = f" Still anomalous since {since:%H:%M}." if kind == "repeat" else ""
        head = [
            f"🚨 Metric {spec.label} in slice {slice_} at {slot:%Y-%m-%d %H:%M} UTC.",
            f"Current value {value}. Deviation {deviation} from the expected {usual}"
            f" (expected band {band}).{still}",
        ]
    return "\n".join(head + links + ([spec.mention] if spec.mention else []))


def _fmt(value: float, metric: str) -> str:
    if pd.isna(value):
        return "n/a"
    return f"{value:.3f}" if metric == "ctr" else f"{value:,.0f}"


def today_vs_yesterday(series: pd.Series, slot: pd.Timestamp, title: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    midnight = slot.normalize()
    today = series[(series.index >= midnight) & (series.index <= slot)]
    day_before = series[
        (series.index >= midnight - pd.Timedelta(days=1)) & (series.index < midnight)
    ]
    figure, axis = plt.subplots(figsize=(9, 3.5))
    axis.plot(
        day_before.index + pd.Timedelta(days=1), day_before.values, label="yesterday", alpha=0.6
    )
    axis.plot(today.index, today.values, label="today", linewidth=2)
    if slot in series.index:
        axis.scatter([slot], [series[slot]], color="red", zorder=3)
    axis.set_title(title)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


# -- the state (PostgreSQL) -------------------------------------------------------------------
MESSAGE_KINDS = ("alert", "repeat", "recovery")
_ready: set[tuple[int, str]] = set()


def ensure_tables() -> None:
    """``ops.alert_state`` and the ledger (once per process and database)."""
    import os

    notifications.ensure_table()
    key = (os.getpid(), load_settings().postgres.database)
    if key in _ready:
        return
    with transaction() as cur:
        if not postgres.table_exists(cur, "ops.alert_state"):
            postgres.serialize_ddl(cur, "ops.alert_state")
            postgres.run(cur, "alerts/create_alert_state")
    _ready.add(key)


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
            found = cur.fetchall()
        rows = [
            (
                pd.Timestamp(period).to_pydatetime(),
                metric,
                slice_,
                kind,
                *(float(d.get(c, 0.0)) for c in ("value", "baseline", "lower", "upper", "change")),
                pd.Timestamp(d.get("since") or period).to_pydatetime(),
                sent_at.astimezone(dt.UTC).replace(tzinfo=None, microsecond=0),
            )
            for kind, period, metric, slice_, d, sent_at in found
        ]
        replace_partition(
            ch, "ops", "alerts", int(f"{start:%Y%m}"), csv_chunks(rows), expected_rows=len(rows)
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
            details: dict[str, Any] = {
                c: _num(decision[c]) for c in ("value", "baseline", "lower", "upper", "change")
            }
            details["since"] = str(since)
            note = Message(
                text,
                photo=today_vs_yesterday(series, slot, f"{spec.label}, {slice_}"),
                label=f"alert-{kind}",
                details=details,
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


def _num(value: Any) -> float:
    return 0.0 if pd.isna(value) else float(value)


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
