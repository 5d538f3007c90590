"""Anomaly alerts on the feed and messenger app's key metrics, every 15 minutes.

For the last complete 15-minute slot (UTC), the check reads the metrics of the feed (active
users, views, likes, CTR) and the messenger (active users, messages sent), overall and per value
of each configured slice (``config/alerts.toml``: os by default), over the history the detector
needs, and decides per metric x slice with ``pipeline.alerts.detector``. Per metric x slice a
state in
Redis (``alerts:state:<metric>:<slice>``) makes an anomaly alert once, again only after the
cooldown while it lasts, and send one recovery message when it ends. Every message is recorded in
ClickHouse ``ops.alerts``; it carries the metric, slice, current value, deviation, links to a
dashboard and a chart, the responsible person's mention, and a chart of today against yesterday.

    luigi --module pipeline.alerts alerts.AlertCheck                  # the last complete slot
    luigi --module pipeline.alerts alerts.AlertCheck --slot 2024-01-17T1415
    luigi --module pipeline.alerts alerts.AlertReplay --start 2024-01-17T0000 --end 2024-01-18T0000
"""

from __future__ import annotations

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
from pipeline.alerts.detector import AlertState, Sensitivity, detect, transition
from pipeline.core.tasks import PipelineTask
from pipeline.systems.clickhouse import ClickHouse, ClickHouseMarkerTarget, csv_chunks
from pipeline.systems.redis import client
from pipeline.systems.telegram import Notifier

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
            sensitivity=Sensitivity(
                k=float(spec.get("k", 3.5)),
                min_change=float(spec.get("min_change", 0.15)),
                days=int(raw.get("history_days", 7)),
            ),
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
    usual = _fmt(decision["baseline"], metric)
    links = []
    if config.chart_url:
        links.append(f"Chart: {config.chart_url.format(metric=metric, slice=slice_)}")
    if config.dashboard_url:
        links.append(f"Dashboard: {config.dashboard_url}")
    if kind == "recovery":
        head = [
            f"✅ Metric {spec.label} in slice {slice_} is back to normal"
            f" at {slot:%Y-%m-%d %H:%M} UTC.",
            f"Current value {value} (usual {usual}); anomalous since {since:%H:%M}.",
        ]
    else:
        still = f" Still anomalous since {since:%H:%M}." if kind == "repeat" else ""
        head = [
            f"🚨 Metric {spec.label} in slice {slice_} at {slot:%Y-%m-%d %H:%M} UTC.",
            f"Current value {value}. Deviation {decision['change']:+.0%} from the usual {usual}"
            f" (more than {spec.sensitivity.min_change:.0%}).{still}",
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


# -- the check --------------------------------------------------------------------------------
def _state_key(metric: str, slice_: str) -> str:
    return f"alerts:state:{metric}:{slice_}"


def _load_state(raw: dict[Any, Any]) -> tuple[AlertState, pd.Timestamp | None]:
    def ts(key: bytes) -> pd.Timestamp | None:
        return pd.Timestamp(raw[key].decode()) if raw.get(key) else None

    return AlertState(since=ts(b"since"), last_alert=ts(b"last_alert")), ts(b"checked")


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
    redis = client()
    start = slot - pd.Timedelta(days=config.history_days + 1)
    if metrics is None:
        frame = metric_frames(ch, start, slot + SLOT, config.slices)
    else:
        frame = metrics[(metrics["slot"] >= start) & (metrics["slot"] < slot + SLOT)]
    if frame.empty:
        return []
    first = frame["slot"].min()
    sent: list[dict[str, Any]] = []
    now = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0))
    notifier = Notifier()
    records = []
    for metric, spec in config.metrics.items():
        for slice_ in sorted(frame.loc[frame["metric"] == metric, "slice"].unique()):
            key = _state_key(metric, slice_)
            state, checked = _load_state(redis.hgetall(key))
            if checked is not None and checked >= slot:
                continue  # this slot (or a later one) was decided already
            series = series_for(frame, metric, slice_, start, slot, first)
            decision = detect(series, SLOT, spec.sensitivity).loc[slot]
            new_state, kind = transition(state, bool(decision["anomalous"]), slot, config.cooldown)
            if kind:
                since = state.since if kind == "recovery" else new_state.since
                text = message(kind, metric, slice_, config, decision, since, slot)
                png = today_vs_yesterday(series, slot, f"{spec.label}, {slice_}")
                notifier.send(text, kind=f"alert-{kind}")
                notifier.send_photo(
                    png, f"{spec.label}, {slice_}: today vs yesterday", kind=f"alert-{kind}"
                )
                records.append(
                    (
                        slot,
                        metric,
                        slice_,
                        kind,
                        *(
                            _num(decision[c])
                            for c in ("value", "baseline", "lower", "upper", "change")
                        ),
                        since,
                        now,
                    )
                )
                sent.append({"kind": kind, "metric": metric, "slice": slice_, "text": text})
                record_alert(metric, kind)
            redis.hset(
                key,
                mapping={
                    "since": new_state.since.isoformat() if new_state.since is not None else "",
                    "last_alert": new_state.last_alert.isoformat()
                    if new_state.last_alert is not None
                    else "",
                    "checked": slot.isoformat(),
                },
            )
    if records:
        ch.insert("ops/insert_alert", csv_chunks(records))
    return sent


def _num(value: Any) -> float:
    return 0.0 if pd.isna(value) else float(value)


class AlertCheck(PipelineTask):
    """The check of one 15-minute slot (default: the last complete one)."""

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
        history = pd.Timedelta(days=config.history_days + 1)
        metrics = metric_frames(ClickHouse(), slots[0] - history, slots[-1] + SLOT, config.slices)
        total = 0
        for i, slot in enumerate(slots, start=1):
            total += len(check_slot(slot, config, metrics))
            if i % 8 == 0:
                self.progress(
                    f"{slot:%Y-%m-%d %H:%M}: {total} message(s) so far", 100 * i / len(slots)
                )
        self.output().touch(total)
