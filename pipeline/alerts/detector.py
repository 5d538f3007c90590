"""Causal anomaly detection for metric series on a regular grid (issue 16): pure, series in,
decisions out, no I/O.

Each slot's decision uses only the values up to and including that slot, so replaying a history
gives, slot by slot, what a live check decided at the time (tests hold a prefix's decisions
equal to the whole run's, and the decision on the last ``history()`` of a series equal to the
decision on all of it). One default ``Sensitivity`` serves every series:

1. **Expected value.** Three candidate models, each from the past only: the *level* (median of
   the last ``recent``), and, where the slot divides a day and the data has enough history, the
   *daily* and *weekly* profiles (median of the same slot on the previous ``days`` days /
   ``weeks`` weeks) plus the median of the last ``recent`` deviations from the profile (growth,
   a holiday level). A profile is used only while its mean absolute error over the last day is
   below ``seasonal_gain`` x the level model's: seasonality is used only when the data has it.
2. **Deviations at several time scales.** For each scale of ``scales`` (one slot, an hour, four
   hours by default) the median of the last slots' deviations from the model minus the median of
   the deviations over the last ``recent``: one slot sees spikes, the longer scales see level
   shifts and sustained changes that no single slot shows (medians, so a spike does not look
   like a shift).
3. **Tails learned per series** (extreme-value style, no per-series tuning). Over the last
   ``history`` (8 days) of each deviation, the largest values give an exponential tail; the
   threshold is where that tail predicts a probability ``risk`` (1e-4) per slot. Heavy-tailed,
   spiky series thus get wide bands and quiet series narrow ones; both directions separately.
   The deviations are those of the slots where the model now in use was in use (all slots
   until those cover ``settle``), so a profile is not judged by the level model's errors.
   A deviation must also exceed ``k`` robust sigmas (1.4826 x the median absolute residual of
   the last day) and ``min_change`` x the expected value; a longer-scale shift must exceed the
   mean absolute residual (``shift_floor``), so a median moving inside the noise of a spiky
   series is not a shift.
4. **A return is not an anomaly.** When the level model is in use, a value inside the range the
   expected value had over the last ``return_window`` is the series coming back to where it just
   was (the end of a burst or an outage), not a new incident.
5. **Warm-up and one alert per episode.** No test fires during the first ``learn`` (the model's
   residuals there are not used) nor before the tails have ``settle`` of residuals. ``hit`` is
   the slot's own verdict; an *episode* runs from a hit until ``calm`` has passed without one;
   ``anomalous`` marks the slots of an episode and ``alert`` only its first slot.

``simple_rule`` is the seed's rule (the same slot a day earlier, deviation over a threshold);
``AlertState``/``transition`` turn the per-slot ``anomalous`` into alert, repeat and recovery
messages for the live check.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAD_TO_SIGMA = 1.4826
DAY = pd.Timedelta(days=1)
MODELS = ("level", "daily", "weekly")
DECISION_COLUMNS = [
    "value",
    "expected",
    "baseline",
    "lower",
    "upper",
    "change",
    "model",
    "hit",
    "anomalous",
    "alert",
]


@dataclass(frozen=True)
class Sensitivity:
    """The detector's one setting. Durations are turned into slots of the series; ``k``,
    ``min_change``, ``days``, ``min_days`` and ``floor`` keep the meaning they had before issue
    16 (``recent`` is now a duration, it was a count of slots)."""

    k: float = 3.0  # no test fires within k robust sigmas of the expected value
    min_change: float = 0.05  # ... nor below this deviation relative to the expected value
    days: int = 7  # daily profile: the same slot on the previous `days` days
    min_days: int = 3  # ... and at least this many of them
    recent: pd.Timedelta = pd.Timedelta(hours=8)  # level: median over this past
    floor: float = 0.0  # robust sigma at least floor x |expected|
    weeks: int = 4  # weekly profile: the same slot on the previous `weeks` weeks
    min_weeks: int = 2
    risk: float = 1e-4  # tail probability per slot and test that makes a deviation anomalous
    tail_top: int = 5  # the tail's scale from the largest tail_top + 1 past deviations
    history: pd.Timedelta = pd.Timedelta(days=8)  # the past the tails are learned from
    learn: pd.Timedelta = pd.Timedelta(hours=12)  # warm-up: the model's first residuals unused
    settle: pd.Timedelta = pd.Timedelta(days=2)  # tails need this much residual history
    scales: tuple[pd.Timedelta, ...] = (
        pd.Timedelta(0),
        pd.Timedelta(hours=1),
        pd.Timedelta(hours=4),
    )
    shift_floor: float = 1.0  # a shift (scale > 1 slot) exceeds this x mean |residual|
    calm: pd.Timedelta = pd.Timedelta(hours=2)  # an episode ends after this without a hit
    return_window: pd.Timedelta = pd.Timedelta(hours=16)  # "back to where it just was" (0: off)
    seasonal_gain: float = 0.8  # a profile is used if its error < gain x the level model's
    spread: pd.Timedelta = pd.Timedelta(days=1)  # robust sigma and model choice from this past
    min_points: int = 24  # windows (recent, spread, learn, settle) span at least this many slots
    tail_points: int = 96  # the tail window spans at least this many slots


# -- the grid -------------------------------------------------------------------------------------
def infer_slot(index: pd.DatetimeIndex) -> pd.Timedelta:
    """The slot length of irregular timestamps: the median positive spacing (whole seconds)."""
    steps = pd.Series(pd.DatetimeIndex(index).sort_values()).diff().dropna()
    steps = steps[steps > pd.Timedelta(0)]
    if steps.empty:
        raise ValueError("fewer than two distinct timestamps: cannot infer the slot length")
    return max(pd.Timedelta(steps.median()).round("s"), pd.Timedelta(seconds=1))


def snap(index: pd.DatetimeIndex, origin: pd.Timestamp, slot: pd.Timedelta) -> pd.DatetimeIndex:
    """Each timestamp moved to the nearest slot of the grid ``origin + n x slot``."""
    steps = np.round((pd.DatetimeIndex(index) - origin) / slot).astype(np.int64)
    return pd.DatetimeIndex(origin + steps * slot)


def grid_origin(index: pd.DatetimeIndex, slot: pd.Timedelta) -> pd.Timestamp:
    """The grid point at or before the first timestamp, on the phase most timestamps have (a
    jittered or late first row does not shift the grid)."""
    ns = pd.DatetimeIndex(index).as_unit("ns").asi8
    step = int(pd.Timedelta(slot).as_unit("ns").value)
    phases, counts = np.unique(ns % step, return_counts=True)
    phase = int(phases[np.argmax(counts)])
    first = int(ns.min())
    return pd.Timestamp(first - (first - phase) % step, tz=pd.DatetimeIndex(index).tz)


def regular(series: pd.Series, slot: pd.Timedelta) -> pd.Series:
    """The series on a regular grid of slots (``grid_origin``): timestamps snapped to the
    nearest slot, several in one slot averaged, slots without data NaN, index sorted."""
    series = series.sort_index(kind="stable")
    if series.empty:
        return series.astype(float)
    index = pd.DatetimeIndex(series.index)
    slots = snap(index, grid_origin(index, slot), slot)
    per_slot = series.astype(float).groupby(slots).mean()
    return per_slot.reindex(pd.date_range(slots.min(), slots.max(), freq=slot))


# -- durations in slots ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Slots:
    """The sensitivity's durations as counts of slots of one series."""

    per_day: int
    recent: int
    spread: int
    history: int
    learn: int
    settle: int
    calm: int
    returns: int
    scales: tuple[int, ...]


def _count(duration: pd.Timedelta, slot: pd.Timedelta, least: int) -> int:
    """``duration`` in slots, at least ``least`` and at least 1."""
    return max(int(round(duration / slot)), least, 1)


def _slots(slot: pd.Timedelta, s: Sensitivity) -> _Slots:
    """The durations of ``s`` for a series of slot length ``slot``."""
    per_day = int(DAY / slot) if DAY % slot == pd.Timedelta(0) else 0
    return _Slots(
        per_day=per_day,
        recent=_count(s.recent, slot, s.min_points),
        spread=_count(s.spread, slot, s.min_points),
        history=_count(s.history, slot, s.tail_points),
        learn=_count(s.learn, slot, s.min_points),
        settle=_count(s.settle, slot, s.min_points),
        calm=_count(s.calm, slot, 1),
        returns=_count(s.return_window, slot, s.min_points) if s.return_window else 0,
        scales=tuple(sorted({_count(m, slot, 1) for m in s.scales})),
    )


def history(slot: pd.Timedelta, sensitivity: Sensitivity = Sensitivity()) -> pd.Timedelta:
    """How much history a live check must pass to ``detect`` so that the decision on its last
    slot equals the decision a replay of the whole series makes for that slot."""
    w = _slots(slot, sensitivity)
    reach = sensitivity.days * w.per_day
    if w.per_day >= 4:
        reach = max(reach, sensitivity.weeks * 7 * w.per_day)
    model = reach + w.recent + 2 * w.spread + max(w.scales) + 2
    return (w.calm + w.history + max(w.learn, model) + w.returns) * slot


# -- rolling statistics (each of the past only) ---------------------------------------------------
def _roll(
    values: np.ndarray, window: int, how: str = "median", lag: int = 0, least: int = 0
) -> np.ndarray:
    """The statistic ``how`` of ``values[t-lag-window+1 .. t-lag]`` (NaN skipped; NaN unless
    ``least`` values, by default half the window, are present)."""
    shifted = pd.Series(values).shift(lag) if lag else pd.Series(values)
    rolled = shifted.rolling(window, min_periods=least or max((window + 1) // 2, 1))
    result: np.ndarray = getattr(rolled, how)().to_numpy(dtype=float)
    return result


def _same_slot_median(values: np.ndarray, period: int, count: int, least: int) -> np.ndarray:
    """Per slot: the median of the same slot in the previous ``count`` periods (NaN with fewer
    than ``least`` of them)."""
    n = len(values)
    cube = np.full((n, count), np.nan)
    for j in range(count):
        lag = period * (j + 1)
        if lag < n:
            cube[lag:, j] = values[: n - lag]
    enough = (~np.isnan(cube)).sum(axis=1) >= least
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no history yet
        middle = np.nanmedian(cube, axis=1)
    return np.where(enough, middle, np.nan)


# -- the expected value ---------------------------------------------------------------------------
def _profiles(values: np.ndarray, s: Sensitivity, w: _Slots) -> list[np.ndarray]:
    """The candidates' bases, in the order of ``MODELS``: 0 (level model), the daily profile and
    the weekly profile (all NaN where the grid or the history does not allow them)."""
    none = np.full(len(values), np.nan)
    if w.per_day < 4:
        return [np.zeros(len(values)), none, none]
    daily = _same_slot_median(values, w.per_day, s.days, s.min_days)
    weekly = _same_slot_median(values, 7 * w.per_day, s.weeks, s.min_weeks)
    return [np.zeros(len(values)), daily, weekly]


def _choose(
    values: np.ndarray, expecteds: list[np.ndarray], s: Sensitivity, w: _Slots
) -> np.ndarray:
    """Per slot, the index of the model in use: a profile replaces the level model (or the
    daily profile) where its mean absolute error over the past ``spread`` is below
    ``seasonal_gain`` x the current choice's."""
    chosen = np.zeros(len(values), dtype=int)
    least = s.min_points
    best = _roll(np.abs(values - expecteds[0]), w.spread, "mean", lag=1, least=least)
    for i, candidate in enumerate(expecteds[1:], start=1):
        error = _roll(np.abs(values - candidate), w.spread, "mean", lag=1, least=least)
        with np.errstate(invalid="ignore"):
            better = (error < s.seasonal_gain * best) & ~np.isnan(candidate)
        chosen = np.where(better, i, chosen)
        best = np.where(better, error, best)
    return chosen


def _pick(arrays: list[np.ndarray], chosen: np.ndarray) -> np.ndarray:
    """Per slot, the value of the chosen model's array."""
    return np.choose(chosen, arrays)


# -- the tails ------------------------------------------------------------------------------------
def _kth_largest_so_far(values: np.ndarray, k: int, upto: int) -> np.ndarray:
    """For t < ``upto``: the k-th largest of ``values[:t]`` (NaN skipped; NaN if fewer)."""
    out = np.full(len(values), np.nan)
    top: list[float] = []
    for t in range(1, min(upto, len(values))):
        v = values[t - 1]
        if not math.isnan(v):
            top = sorted([*top, float(v)], reverse=True)[:k]
        if len(top) == k:
            out[t] = top[-1]
    return out


def _upper_tail(d: np.ndarray, s: Sensitivity, w: _Slots) -> np.ndarray:
    """Per slot, the upper threshold for ``d`` from its past ``history``: an exponential tail
    fitted to the largest values (its scale from the gap between the largest and the
    ``tail_top``+1-th largest), extended from the largest value to where its probability per
    slot is ``risk`` (NaN until ``settle`` of history)."""
    past = pd.Series(d).shift(1).rolling(w.history, min_periods=w.settle)
    top = past.max().to_numpy(dtype=float)
    count = past.count().to_numpy(dtype=float)
    kth = past.quantile(max(1 - s.tail_top / w.history, 0.5)).to_numpy(dtype=float).copy()
    early = _kth_largest_so_far(d, s.tail_top + 1, w.history)
    kth[: w.history] = np.where(np.isnan(early[: w.history]), kth[: w.history], early[: w.history])
    # Exponential tail of scale b: the largest exceeds the (k+1)-th largest by b x H(k) on average.
    slope = np.fmax(top - kth, 0) / sum(1 / i for i in range(1, s.tail_top + 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = np.log(1 / ((count + 1) * s.risk)).clip(0)
    return top + slope * reach


# -- the tests ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Model:
    """The expected value per slot and what the tests need of it."""

    expected: np.ndarray
    chosen: np.ndarray
    deviations: list[np.ndarray]  # per candidate: value - base
    sigma: np.ndarray  # robust sigma of the residuals over the past `spread`
    mean_abs: np.ndarray  # mean |residual| over the past `history`


def _model(values: np.ndarray, s: Sensitivity, w: _Slots) -> _Model:
    """Fit the candidates, choose per slot, and measure the residual noise."""
    bases = _profiles(values, s, w)
    deviations = [values - b for b in bases]
    expecteds = [b + _roll(d, w.recent, lag=1) for b, d in zip(bases, deviations, strict=True)]
    chosen = _choose(values, expecteds, s, w)
    expected = _pick(expecteds, chosen)
    residual = values - expected
    sigma = MAD_TO_SIGMA * _roll(np.abs(residual), w.spread, lag=1)
    sigma = np.nan_to_num(np.fmax(sigma, s.floor * np.abs(expected)))
    mean_abs = _roll(np.abs(residual), w.history, "mean", lag=1, least=s.min_points)
    return _Model(expected, chosen, deviations, sigma, mean_abs)


def _deviation(model: _Model, m: int, w: _Slots) -> np.ndarray:
    """Per slot: the median deviation of the last ``m`` slots from the chosen model's base,
    minus the model's level (median over the past ``recent``); NaN during ``learn``."""
    least = (m + 1) // 2
    per_model = []
    for d in model.deviations:
        now = pd.Series(d).rolling(m, min_periods=least).median().to_numpy(dtype=float)
        per_model.append(now - _roll(d, w.recent, lag=1))
    out = _pick(per_model, model.chosen)
    out[: w.learn] = np.nan
    return out


def _tails(dev: np.ndarray, model: _Model, s: Sensitivity, w: _Slots) -> tuple[np.ndarray, ...]:
    """Lower and upper tail thresholds for ``dev``, learned from the past deviations of the
    model in use (the slots where it was chosen), else, until those have ``settle`` of
    history, from all past deviations: a daily profile that replaced the level model is not
    judged by the level model's larger errors of the first days."""
    upper, lower = _upper_tail(dev, s, w), -_upper_tail(-dev, s, w)
    for i in np.unique(model.chosen):
        own = np.where(model.chosen == i, dev, np.nan)
        now = model.chosen == i
        own_upper, own_lower = _upper_tail(own, s, w), -_upper_tail(-own, s, w)
        upper = np.where(now & ~np.isnan(own_upper), own_upper, upper)
        lower = np.where(now & ~np.isnan(own_lower), own_lower, lower)
    return lower, upper


def _returning(values: np.ndarray, model: _Model, m: int, w: _Slots) -> np.ndarray:
    """Slots where the level model is in use and the median of the last ``m`` values lies in the
    range the expected value took over the past ``return_window``: a return, not an incident."""
    if not w.returns:
        return np.zeros(len(values), dtype=bool)
    now = pd.Series(values).rolling(m, min_periods=(m + 1) // 2).median().to_numpy(dtype=float)
    seen = pd.Series(model.expected).rolling(w.returns, min_periods=1)
    low, high = seen.min().to_numpy(dtype=float), seen.max().to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return (model.chosen == 0) & (now >= low) & (now <= high)


def _bounds(dev: np.ndarray, model: _Model, s: Sensitivity, w: _Slots) -> tuple[np.ndarray, ...]:
    """Lower and upper threshold for a deviation: the learned tails (NaN while unknown),
    widened to ``k`` sigmas."""
    lower, upper = _tails(dev, model, s, w)
    upper = np.where(np.isnan(upper), np.nan, np.fmax(upper, s.k * model.sigma))
    lower = np.where(np.isnan(lower), np.nan, np.fmin(lower, -s.k * model.sigma))
    return lower, upper


def _test(
    values: np.ndarray, model: _Model, m: int, s: Sensitivity, w: _Slots
) -> tuple[np.ndarray, ...]:
    """The test at scale ``m`` slots: its verdict per slot and its (lower, upper) thresholds."""
    dev = _deviation(model, m, w)
    lower, upper = _bounds(dev, model, s, w)
    with np.errstate(invalid="ignore"):
        out = (dev > upper) | (dev < lower)
        out &= np.abs(dev) >= s.min_change * np.abs(model.expected)
        if m > 1:
            out &= np.abs(dev) > s.shift_floor * model.mean_abs
    out &= ~_returning(values, model, m, w)
    return out & ~np.isnan(lower) & ~np.isnan(upper), lower, upper


def _episodes(hits: np.ndarray, calm: int) -> tuple[np.ndarray, np.ndarray]:
    """(in an episode, first slot of an episode): an episode runs from a hit until ``calm``
    slots have passed without one."""
    h = pd.Series(hits.astype(float))
    inside = h.rolling(calm, min_periods=1).max().to_numpy() > 0
    before = h.shift(1).rolling(calm, min_periods=1).max().fillna(0).to_numpy() > 0
    return inside, hits & ~before


def detect(
    series: pd.Series, slot: pd.Timedelta, sensitivity: Sensitivity = Sensitivity()
) -> pd.DataFrame:
    """Per slot of a regular series (``regular``; NaN = no data, never flagged): ``value``,
    ``expected`` (``baseline``: the same, for older callers), the band ``lower``-``upper`` of the
    one-slot test, ``change`` (relative deviation), ``model`` (level/daily/weekly), ``hit`` (the
    slot itself is anomalous), ``anomalous`` (the slot is in an episode) and ``alert`` (the
    first slot of an episode)."""
    s, w = sensitivity, _slots(slot, sensitivity)
    values = series.astype(float).to_numpy()
    model = _model(values, s, w)
    hits = np.zeros(len(values), dtype=bool)
    band = (np.full(len(values), np.nan), np.full(len(values), np.nan))
    for m in w.scales:
        verdict, lower, upper = _test(values, model, m, s, w)
        hits |= verdict
        if m == 1:
            band = (model.expected + lower, model.expected + upper)
    hits &= ~np.isnan(values) & ~np.isnan(model.expected)
    anomalous, alert = _episodes(hits, w.calm)
    return _frame(series.index, values, model, band, hits, anomalous, alert)


def _frame(
    index: pd.Index,
    values: np.ndarray,
    model: _Model,
    band: tuple[np.ndarray, np.ndarray],
    hits: np.ndarray,
    anomalous: np.ndarray,
    alert: np.ndarray,
) -> pd.DataFrame:
    """The decisions as a frame indexed like the series (columns: ``DECISION_COLUMNS``)."""
    expected = model.expected
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(np.abs(expected) > 0, (values - expected) / np.abs(expected), np.nan)
    return pd.DataFrame(
        {
            "value": values,
            "expected": expected,
            "baseline": expected,
            "lower": band[0],
            "upper": band[1],
            "change": change,
            "model": np.asarray(MODELS, dtype=object)[model.chosen],
            "hit": hits,
            "anomalous": anomalous,
            "alert": alert,
        },
        index=index,
    )


def simple_rule(series: pd.Series, slot: pd.Timedelta, threshold: float = 0.3) -> pd.DataFrame:
    """The seed's rule: the same slot a day before, deviation over ``threshold``; every such
    slot is flagged (``alert`` = ``anomalous`` = ``hit``)."""
    values = series.astype(float)
    before = values.shift(int(DAY / slot))
    change = (values - before) / before.where(before > 0)
    flagged = (change.abs() > threshold).fillna(False).astype(bool)
    return pd.DataFrame(
        {
            "value": values,
            "expected": before,
            "baseline": before,
            "lower": before * (1 - threshold),
            "upper": before * (1 + threshold),
            "change": change,
            "model": "yesterday",
            "hit": flagged,
            "anomalous": flagged,
            "alert": flagged,
        }
    )


# -- alert state: one per metric x slice ----------------------------------------------------------
@dataclass(frozen=True)
class AlertState:
    """Anomalous since (None: normal) and when it was last alerted."""

    since: pd.Timestamp | None = None
    last_alert: pd.Timestamp | None = None


def transition(
    state: AlertState,
    anomalous: bool,
    slot: pd.Timestamp,
    cooldown: pd.Timedelta,
    hit: bool | None = None,
) -> tuple[AlertState, str | None]:
    """The next state and what to say: 'alert' (an episode starts), 'repeat' (still off its
    band at this slot, a cooldown after the last message), 'recovery' (the episode is over: the
    metric has stayed inside its band for the detector's ``calm`` time), or None.

    ``anomalous`` is "inside an episode"; ``hit`` is "off the band at this very slot" (None: the
    same as ``anomalous``). A repeat needs a hit: a metric already back inside its band is not
    announced as still anomalous while the episode waits out its calm time."""
    deviating = anomalous if hit is None else hit
    if anomalous:
        if state.since is None:
            return AlertState(since=slot, last_alert=slot), "alert"
        if deviating and (state.last_alert is None or slot - state.last_alert >= cooldown):
            return AlertState(since=state.since, last_alert=slot), "repeat"
        return state, None
    if state.since is not None:
        return AlertState(), "recovery"
    return state, None
    if state.since is not None:
        return AlertState(), "recovery"
    return state, None
