"""The alerts flow's pure pieces on small frames: the slots as one long frame (CTR derived), the
regular series the detector reads, the message's text, and the ledger's rows for ClickHouse."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipeline.alerts.contract import (
    CONFIG_KEYS,
    DETAIL_FIELDS,
    METRIC_COLUMNS,
    METRIC_KEYS,
    METRICS,
    AlertConfig,
    MetricConfig,
)
from pipeline.alerts.detector import Sensitivity
from pipeline.alerts.tasks import load_config
from pipeline.alerts.transform import (
    alert_details,
    alert_rows,
    message,
    name_slices,
    series_for,
    stack_metrics,
)

T0 = pd.Timestamp("2024-01-17 14:00")
T1 = T0 + pd.Timedelta(minutes=15)


def test_slots_become_one_row_per_slot_slice_and_metric_with_ctr() -> None:
    feed = pd.DataFrame(
        {
            "slot": [T0, T1],
            "slice": ["all", "all"],
            "feed_users": [3, 1],
            "views": [10, 0],
            "likes": [2, 0],
        }
    )
    messages = name_slices(
        pd.DataFrame({"slot": [T0], "slice": ["iOS"], "messenger_users": [2], "messages": [5]}),
        "os",
    )
    got = stack_metrics(feed, messages)
    assert tuple(got.columns) == METRIC_COLUMNS
    ctr = got[got["metric"] == "ctr"]["value"].tolist()
    assert ctr[0] == 0.2 and pd.isna(ctr[1])  # no views: no CTR
    assert set(got.loc[got["metric"] == "messages", "slice"]) == {"os=iOS"}
    assert stack_metrics(feed.iloc[:0], messages.iloc[:0]).empty


def test_a_series_is_regular_with_zeros_for_quiet_slots_and_nothing_before_the_data() -> None:
    frame = pd.DataFrame({"slot": [T1], "slice": ["all"], "metric": ["views"], "value": [7]})
    start = T0 - pd.Timedelta(minutes=15)
    views = series_for(frame, "views", "all", start, T1 + pd.Timedelta(minutes=15), T0)
    assert views.tolist()[1:] == [0.0, 7.0, 0.0] and pd.isna(views.iloc[0])
    ctr = series_for(frame, "ctr", "all", start, T1, T0)
    assert ctr.isna().all()


def config() -> AlertConfig:
    spec = MetricConfig("Views", Sensitivity(), mention="@feed_oncall")
    return AlertConfig({"views": spec}, chart_url="http://c/{metric}/{slice}")


def decision() -> pd.Series:
    return pd.Series(
        {
            "value": 600.0,
            "baseline": 1000.0,
            "expected": 1000.0,
            "lower": 900.0,
            "upper": 1100.0,
            "change": -0.4,
        }
    )


def test_an_alert_and_a_recovery_say_value_deviation_band_links_and_mention() -> None:
    alert = message("alert", "views", "os=iOS", config(), decision(), T0, T0)
    assert alert.splitlines() == [
        "🚨 Metric Views in slice os=iOS at 2024-01-17 14:00 UTC.",
        "Current value 600. Deviation -40% from the expected 1,000 (expected band 900–1,100).",
        "Chart: http://c/views/os=iOS",
        "@feed_oncall",
    ]
    recovery = message("recovery", "views", "os=iOS", config(), decision(), T0, T1)
    assert "back to normal at 2024-01-17 14:15 UTC" in recovery
    assert "anomalous since 14:00" in recovery


def test_the_ledger_keeps_the_figures_and_clickhouse_gets_them_back() -> None:
    details = alert_details(decision().drop("expected"), T0)
    assert set(details) == {*DETAIL_FIELDS, "since"}
    sent_at = dt.datetime(2024, 1, 17, 14, 16, 30, 123, tzinfo=dt.UTC)
    (row,) = alert_rows([("alert", "2024-01-17T14:15", "views", "all", details, sent_at)])
    assert row == (
        dt.datetime(2024, 1, 17, 14, 15),
        "views",
        "all",
        "alert",
        600.0,
        1000.0,
        900.0,
        1100.0,
        -0.4,
        dt.datetime(2024, 1, 17, 14, 0),
        dt.datetime(2024, 1, 17, 14, 16, 30),
    )


def test_the_shipped_config_uses_only_the_declared_keys_and_metrics() -> None:
    import tomllib

    from config.settings import PROJECT_ROOT

    raw = tomllib.loads((PROJECT_ROOT / "config" / "alerts.toml").read_text(encoding="utf-8"))
    assert set(raw) <= set(CONFIG_KEYS)
    assert all(set(spec) <= set(METRIC_KEYS) for spec in raw["metrics"].values())
    assert set(load_config(PROJECT_ROOT / "config" / "alerts.toml").metrics) == set(METRICS)
