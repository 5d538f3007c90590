"""The detector (pure): it finds injected incidents, stays quiet on seasonal noise where the
seed's rule does not, decides each slot from the past only, and the alert state machine alerts
once, repeats after the cooldown, and recovers once. The ``detect`` command replays a CSV."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.alerts import detect as detect_cli
from pipeline.alerts.detector import AlertState, Sensitivity, detect, simple_rule, transition

SLOT = pd.Timedelta(minutes=15)


def daily_series(days: int = 14, scale: float = 10.0, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=96 * days, freq=SLOT)
    hours = index.hour + index.minute / 60
    level = scale * (
        30 + 40 * np.exp(-((hours - 13) ** 2) / 8) + 60 * np.exp(-((hours - 20.5) ** 2) / 6)
    )
    return pd.Series(rng.poisson(level).astype(float), index=index)


def test_an_incident_is_found_and_noise_is_not() -> None:
    series = daily_series()
    incident = slice(96 * 12 + 56, 96 * 12 + 64)  # day 13, 14:00-16:00
    series.iloc[incident] *= 0.5
    decided = detect(series, SLOT)
    inside = np.zeros(len(series), bool)
    inside[incident] = True
    assert decided["anomalous"][inside].sum() >= 6
    assert decided["anomalous"][~inside].sum() <= 2
    # The seed's rule on the same data raises far more false alarms.
    assert simple_rule(series, SLOT)["anomalous"][~inside].sum() > 5


@pytest.mark.parametrize("t", [96 * 3 + 5, 96 * 9 + 40, 96 * 12 + 58, 96 * 14 - 1])
def test_each_decision_uses_only_the_past(t: int) -> None:
    series = daily_series()
    series.iloc[96 * 12 + 56 : 96 * 12 + 64] *= 0.5
    whole = detect(series, SLOT)
    prefix = detect(series.iloc[: t + 1], SLOT)
    pd.testing.assert_series_equal(prefix.iloc[-1], whole.iloc[t])


def test_no_decision_without_enough_history() -> None:
    decided = detect(daily_series(days=3), SLOT, Sensitivity(min_days=3))
    assert not decided["anomalous"].any() and decided["baseline"].isna().all()


def test_the_state_machine_alerts_once_repeats_after_cooldown_and_recovers() -> None:
    cooldown = pd.Timedelta(hours=1)
    t = pd.Timestamp("2024-01-17 14:00")
    state, said = AlertState(), []
    for i, anomalous in enumerate([False, True, True, True, True, True, True, False, False]):
        state, kind = transition(state, anomalous, t + i * SLOT, cooldown)
        said.append(kind)
    assert said == [None, "alert", None, None, None, "repeat", None, "recovery", None]


def test_the_detect_command_replays_a_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    series = daily_series()
    series.iloc[96 * 12 + 56 : 96 * 12 + 64] *= 0.5
    path = tmp_path / "views.csv"
    pd.DataFrame({"ts": series.index.strftime("%Y-%m-%d %H:%M:%S"), "views": series.values}).to_csv(
        path, index=False
    )
    assert (
        detect_cli.main(
            [str(path), "--time-column", "ts", "--value-column", "views", "--format", "json"]
        )
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = detect(series, SLOT)
    assert [r["slot"] for r in rows] == [
        t.strftime("%Y-%m-%dT%H:%M:%S") for t in expected.index[expected["anomalous"]]
    ]
    assert all(r["anomalous"] for r in rows)
    assert (
        detect_cli.main([str(path), "--time-column", "ts", "--value-column", "views", "--all"]) == 0
    )
    assert len(capsys.readouterr().out.splitlines()) == len(series) + 1


def test_the_detect_command_names_a_missing_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.csv"
    path.write_text("when,n\n2024-01-01 00:00,1\n")
    assert detect_cli.main([str(path), "--time-column", "ts"]) == 2
    assert "no column 'ts' (columns: when, n)" in capsys.readouterr().err
