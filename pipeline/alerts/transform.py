"""The alerts flow's pure pieces: frames in, series, text, rows and pictures out (no I/O).

- ``name_slices`` and ``stack_metrics``: the slots read from ClickHouse as one long frame, one row
  per slot x slice x metric, CTR derived from likes and views;
- ``series_for``: one metric x slice of it as the regular series the detector reads;
- ``message`` and ``today_vs_yesterday``: what people receive, the text and its chart;
- ``alert_details`` and ``alert_rows``: a message's figures as the ledger keeps them, and the
  ledger's messages as rows of ClickHouse ``ops.alerts``.

The decision itself is the detector's (``detector.py``).
"""

from __future__ import annotations

import datetime as dt
import io
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.alerts.contract import DETAIL_FIELDS, METRIC_COLUMNS, SLOT

if TYPE_CHECKING:
    from pipeline.alerts.contract import AlertConfig


# -- the metrics ------------------------------------------------------------------------------
def name_slices(frame: pd.DataFrame, dimension: str) -> pd.DataFrame:
    """A slice's rows named ``<dimension>=<value>`` (``os=Android``), apart from the overall
    series (``all``)."""
    return frame.assign(slice=f"{dimension}=" + frame["slice"].astype(str))


def stack_metrics(feed: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    """The feed's and the messenger's slots (one row per slot x slice, a column per metric) as
    one row per slot x slice x metric (``METRIC_COLUMNS``); CTR is likes per view, no value in
    a slot without views. Slots without events have no row."""
    if len(feed):
        feed = feed.assign(ctr=feed["likes"] / feed["views"].where(feed["views"] > 0))
    long = [
        f.melt(id_vars=["slot", "slice"], var_name="metric", value_name="value")
        for f in (feed, messages)
        if len(f)
    ]
    if not long:
        return pd.DataFrame(columns=list(METRIC_COLUMNS))
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
    """The text of an alert, a repeat or a recovery: the metric and slice, the slot, the value
    against the expected value and band, since when it is anomalous, the links and the mention."""
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
    """A metric's value as people read it: CTR to 3 places, counts whole with thousands."""
    if pd.isna(value):
        return "n/a"
    return f"{value:.3f}" if metric == "ctr" else f"{value:,.0f}"


def today_vs_yesterday(series: pd.Series, slot: pd.Timestamp, title: str) -> bytes:
    """The message's chart (PNG): the series today up to ``slot`` over yesterday's, the slot
    marked."""
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


# -- the record -------------------------------------------------------------------------------
def alert_details(decision: pd.Series, since: pd.Timestamp | None) -> dict[str, Any]:
    """A message's figures as the ledger keeps them (``DETAIL_FIELDS``, no value: 0) and since
    when the metric is anomalous."""
    details: dict[str, Any] = {c: _num(decision[c]) for c in DETAIL_FIELDS}
    details["since"] = str(since)
    return details


def _num(value: Any) -> float:
    return 0.0 if pd.isna(value) else float(value)


def alert_rows(found: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The ledger's sent messages (kind, period, metric, slice, details, sent_at) as rows of
    ClickHouse ``ops.alerts``: slot, metric, slice, kind, the figures, since, sent (UTC)."""
    return [
        (
            pd.Timestamp(period).to_pydatetime(),
            metric,
            slice_,
            kind,
            *(float(d.get(c, 0.0)) for c in DETAIL_FIELDS),
            pd.Timestamp(d.get("since") or period).to_pydatetime(),
            sent_at.astimezone(dt.UTC).replace(tzinfo=None, microsecond=0),
        )
        for kind, period, metric, slice_, d, sent_at in found
    ]
