"""Anomaly detection for metrics in time slots (the 15-minute alerts): pure, series in, decisions.

The requirement's simple rule compares a slot with the same slot a day before. Metrics of a feed
have a strong daily rhythm and noise: one odd yesterday makes that rule fire today. This detector:

1. **Seasonal baseline**: the median of the same slot on the previous ``days`` days (at least
   ``min_days`` of them), so one unusual day in the history does not move it.
2. **Noise from the same history**: the spread is 1.4826 x the median absolute deviation from
   the baseline of the slot and its two neighbours on each side over those days (up to 35
   values: noise at the peak is not noise at night), at least ``floor`` x the baseline so a
   very quiet metric is not hypersensitive.
3. **Level**: the median residual (value - baseline) of the previous ``recent`` slots shifts the
   band, so growth or a holiday level does not fire all day.
4. **Band**: baseline + level +- ``k`` x spread. A slot outside the band whose value also differs
   from the baseline by at least ``min_change`` (relative) is anomalous.

Each slot's decision uses only the values before it (and its own), so running ``detect`` over a
whole history gives, slot by slot, exactly what the live 15-minute check decided at the time
(a test holds a prefix's decisions equal to the whole run's).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAD_TO_SIGMA = 1.4826
NEIGHBOURS = (-2, -1, 0, 1, 2)
DECISION_COLUMNS = ["value", "baseline", "lower", "upper", "change", "anomalous"]


@dataclass(frozen=True)
class Sensitivity:
    k: float = 3.5
    min_change: float = 0.15
    days: int = 7
    min_days: int = 3
    recent: int = 96
    floor: float = 0.03


def regular(series: pd.Series, slot: pd.Timedelta) -> pd.Series:
    """The series on a regular grid of slots (missing slots NaN), index sorted."""
    series = series.sort_index()
    if series.empty:
        return series.astype(float)
    grid = pd.date_range(series.index[0], series.index[-1], freq=slot)
    return series.reindex(grid).astype(float)


def detect(
    series: pd.Series, slot: pd.Timedelta, sensitivity: Sensitivity = Sensitivity()
) -> pd.DataFrame:
    """Per slot of a regular series: value, baseline, band, relative change, anomalous."""
    s = sensitivity
    values = series.astype(float)
    per_day = int(pd.Timedelta(days=1) / slot)
    # values[t - k days + j] for k = 1..days and j = -2..2 (all in the past of t): the same slot
    # and its neighbours on the previous days.
    cube = np.stack(
        [
            np.column_stack(
                [values.shift(per_day * k + j).to_numpy() for k in range(1, s.days + 1)]
            )
            for j in NEIGHBOURS
        ],
        axis=2,
    )
    centre_j = len(NEIGHBOURS) // 2
    enough = (~np.isnan(cube[:, :, centre_j])).sum(axis=1) >= s.min_days
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no history yet
        middle = np.nanmedian(cube[:, :, centre_j], axis=1)
        # Deviations of the neighbourhood from the slot's own median: a median over few days is
        # one of them (a zero deviation), so the neighbours keep the spread honest.
        noise = MAD_TO_SIGMA * np.nanmedian(
            np.abs(cube - middle[:, None, None]).reshape(len(values), -1), axis=1
        )
    baseline = pd.Series(np.where(enough, middle, np.nan), index=values.index)
    # A level shift of the last day (growth, a holiday) moves the band with it.
    residual = (values - baseline).shift(1)
    window = max(s.recent, 4)
    centre = residual.rolling(window, min_periods=window // 2).median().fillna(0)
    spread = pd.Series(np.nan_to_num(noise), index=values.index)
    spread = np.maximum(spread, s.floor * baseline.abs()).clip(lower=1e-9)
    lower = baseline + centre - s.k * spread
    upper = baseline + centre + s.k * spread
    change = (values - baseline) / baseline.abs().where(baseline.abs() > 0)
    outside = (values < lower) | (values > upper)
    anomalous = outside & (change.abs() >= s.min_change) & baseline.notna() & values.notna()
    return pd.DataFrame(
        {
            "value": values,
            "baseline": baseline,
            "lower": lower,
            "upper": upper,
            "change": change,
            "anomalous": anomalous.fillna(False).astype(bool),
        }
    )


def simple_rule(series: pd.Series, slot: pd.Timedelta, threshold: float = 0.3) -> pd.DataFrame:
    """The requirement's simple rule: the same slot a day before, deviation over ``threshold``."""
    values = series.astype(float)
    before = values.shift(int(pd.Timedelta(days=1) / slot))
    change = (values - before) / before.where(before > 0)
    return pd.DataFrame(
        {
            "value": values,
            "baseline": before,
            "lower": before * (1 - threshold),
            "upper": before * (1 + threshold),
            "change": change,
            "anomalous": (change.abs() > threshold).fillna(False).astype(bool),
        }
    )


# -- alert state: one per metric x slice ------------------------------------------------------
@dataclass(frozen=True)
class AlertState:
    since: pd.Timestamp | None = None  # anomalous since (None: normal)
    last_alert: pd.Timestamp | None = None


def transition(
    state: AlertState, anomalous: bool, slot: pd.Timestamp, cooldown: pd.Timedelta
) -> tuple[AlertState, str | None]:
    """The next state and what to say: 'alert' (it starts), 'repeat' (still anomalous after the
    cooldown), 'recovery' (back to normal), or None."""
    if anomalous:
        if state.since is None:
            return AlertState(since=slot, last_alert=slot), "alert"
        if state.last_alert is None or slot - state.last_alert >= cooldown:
            return AlertState(since=state.since, last_alert=slot), "repeat"
        return state, None
    if state.since is not None:
        return AlertState(), "recovery"
    return state, None
