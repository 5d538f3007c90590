"""Scoring of an anomaly detector on labelled series: the shared real ones and generated incidents.

The measure is the one of ``tests/data/anomaly-series/README.md``:

- **window recall**: the share of labelled windows (pooled over the series) that contain at
  least one flagged timestamp;
- **false alarms per 1,000 points**: flagged timestamps outside every window per 1,000 points
  of a series, averaged over the series (a series without windows counts too).

A *detector* here is any function ``(series on a regular grid, slot) -> boolean flags on that
grid``. The real files are put on their grid with ``detector.regular`` (slot inferred from the
median spacing); a flagged slot stands for the file's first timestamp in that slot, so flagged
timestamps are always timestamps of the file.

``score`` and ``overall`` are pure; ``load_labelled`` reads the files; ``generated`` makes the
simulator-style 15-minute series of ``benchmarks/app_bench.py`` with one injected incident.

    python scoring.py [--data DIR] [--old PATH/TO/OLD/detector.py]    # the RESULTS.md tables
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from config.settings import PROJECT_ROOT
from pipeline.alerts.detector import (
    Sensitivity,
    detect,
    grid_origin,
    infer_slot,
    regular,
    simple_rule,
    snap,
)

Window = tuple[pd.Timestamp, pd.Timestamp]
Detector = Callable[[pd.Series, pd.Timedelta], pd.Series]


# The 23 labelled real series (NAB, MIT licence), kept in the repository for the tests and the
# benchmark; ``--data`` points at others.
DEFAULT_DATA = PROJECT_ROOT / "tests" / "data" / "anomaly-series"


# -- the measure (pure) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SeriesScore:
    """One series: its size, its windows, how many were found, flags outside every window."""

    name: str
    points: int
    windows: int
    found: int
    false_alarms: int

    @property
    def recall(self) -> float:
        """Found windows / windows (NaN without windows)."""
        return self.found / self.windows if self.windows else float("nan")

    @property
    def fa_per_1000(self) -> float:
        """False alarms per 1,000 points of the series."""
        return 1000.0 * self.false_alarms / self.points if self.points else 0.0


@dataclass(frozen=True)
class Overall:
    """Pooled window recall and mean false alarms per 1,000 points over a set of series."""

    windows: int
    found: int
    fa_per_1000: float

    @property
    def recall(self) -> float:
        return self.found / self.windows if self.windows else float("nan")


def score(
    flagged: Iterable[pd.Timestamp], windows: Sequence[Window], points: int, name: str = ""
) -> SeriesScore:
    """Score flagged timestamps against closed windows ``[start, end]`` of a series of
    ``points`` points."""
    times = pd.DatetimeIndex(sorted(set(flagged)))
    inside_any = np.zeros(len(times), dtype=bool)
    found = 0
    for start, end in windows:
        inside = (times >= start) & (times <= end)
        found += bool(inside.any())
        inside_any |= inside
    return SeriesScore(name, points, len(windows), found, int((~inside_any).sum()))


def overall(scores: Sequence[SeriesScore]) -> Overall:
    """Windows pooled over the series; false alarms per 1,000 points averaged over them."""
    return Overall(
        windows=sum(s.windows for s in scores),
        found=sum(s.found for s in scores),
        fa_per_1000=float(np.mean([s.fa_per_1000 for s in scores])) if scores else 0.0,
    )


def flagged_times(raw: pd.Series, decide: Detector) -> pd.DatetimeIndex:
    """Run ``decide`` on the grid of ``raw`` (a file's values by timestamp) and return the
    file's timestamps it flags (the first one of each flagged slot)."""
    index = pd.DatetimeIndex(raw.index)
    slot = infer_slot(index)
    grid = regular(raw, slot)
    flags = decide(grid, slot).reindex(grid.index, fill_value=False).astype(bool)
    slots = snap(index, grid_origin(index, slot), slot)
    per_row = flags.reindex(slots).to_numpy()
    times = pd.Series(raw.index[per_row], index=slots[per_row])
    return pd.DatetimeIndex(times.groupby(level=0).min().to_numpy())


# -- the shared real series -----------------------------------------------------------------------
@dataclass(frozen=True)
class Labelled:
    """A labelled series: values by the file's timestamps (sorted) and its windows."""

    name: str
    raw: pd.Series
    windows: list[Window]


def data_dir(explicit: Path | None = None) -> Path:
    """The labelled series: ``explicit``, else the copy in tests/data/anomaly-series
    next to the repository."""
    return explicit or DEFAULT_DATA


def load_labelled(root: Path) -> list[Labelled]:
    """Every series listed in ``root/windows.json`` with its windows (raises if missing)."""
    spec = json.loads((root / "windows.json").read_text(encoding="utf-8"))
    out = []
    for name, windows in sorted(spec.items()):
        frame = pd.read_csv(root / name)
        raw = pd.Series(
            pd.to_numeric(frame["value"], errors="coerce").to_numpy(),
            index=pd.DatetimeIndex(pd.to_datetime(frame["timestamp"])),
        ).sort_index(kind="stable")
        pairs = [(pd.Timestamp(a), pd.Timestamp(b)) for a, b in windows]
        out.append(Labelled(name, raw, pairs))
    return out


def evaluate(series: Sequence[Labelled], decide: Detector) -> list[SeriesScore]:
    """Per series: the score of ``decide`` (points: the file's rows)."""
    return [score(flagged_times(s.raw, decide), s.windows, len(s.raw), s.name) for s in series]


# -- generated incidents (the simulator-style series of benchmarks/app_bench.py) ------------------
GEN_SLOT = pd.Timedelta(minutes=15)


def generated(trial: int, size: float | None, days: int = 14) -> tuple[pd.Series, list[Window]]:
    """A 15-minute series with a daily rhythm, a weekend lift and Poisson noise; unless ``size``
    is None, one incident of 1-2 hours on day 13 scales it by ``1 + size``. Returns the series
    and the incident as one window (its first and last slot)."""
    rng = np.random.default_rng([trial, int((size or 0.0) * 100) + 1000])
    index = pd.date_range("2024-01-01", periods=96 * days, freq=GEN_SLOT)
    hours = index.hour + index.minute / 60
    scale = rng.choice([3.0, 10.0, 30.0])
    level = scale * (
        30 + 40 * np.exp(-((hours - 13) ** 2) / 8) + 60 * np.exp(-((hours - 20.5) ** 2) / 6)
    )
    level = level * np.where(index.day_of_week >= 5, 1.15, 1.0)
    values = rng.poisson(level).astype(float)
    start = 96 * 12 + int(rng.integers(24, 80))
    length = int(rng.integers(4, 9))
    if size is None:
        return pd.Series(values, index=index), []
    values[start : start + length] *= 1 + size
    return pd.Series(values, index=index), [(index[start], index[start + length - 1])]


def evaluate_generated(decide: Detector, size: float | None, trials: int = 20) -> list[SeriesScore]:
    """Per generated series (incident of ``size``, or none): the score of ``decide``."""
    out = []
    for trial in range(trials):
        series, windows = generated(trial, size)
        flags = decide(series, GEN_SLOT)
        out.append(score(flags.index[flags.to_numpy()], windows, len(series), f"trial {trial}"))
    return out


# -- the tables -----------------------------------------------------------------------------------
def _load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("old_detector", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: cannot load")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def detectors(old: Path | None) -> dict[str, Detector]:
    """The new detector's alerts, the old detector's anomalous slots (if ``old`` is given) and
    the seed's rule at 30/50/100%."""
    out: dict[str, Detector] = {"new": lambda s, slot: detect(s, slot)["alert"]}
    if old is not None and old.exists():
        out["old"] = _flags(_load_module(old).detect, "anomalous")
    for threshold in (0.3, 0.5, 1.0):
        out[f"seed {threshold:.0%}"] = _seed(threshold)
    return out


def _flags(decide: Callable[[pd.Series, pd.Timedelta], pd.DataFrame], column: str) -> Detector:
    """A detector from a function returning decisions: its ``column``."""
    return lambda series, slot: decide(series, slot)[column]


def _seed(threshold: float) -> Detector:
    """The seed's rule at ``threshold``: every slot it flags."""
    return lambda series, slot: simple_rule(series, slot, threshold)["anomalous"]


def _cell(s: SeriesScore | Overall) -> str:
    recall = "–" if np.isnan(s.recall) else f"{s.recall:.2f}"
    return f"{recall} / {s.fa_per_1000:.2f}"


def real_table(series: Sequence[Labelled], decide: dict[str, Detector]) -> str:
    """Markdown: per series and overall, ``recall / FA per 1000`` per detector."""
    scores = {name: evaluate(series, d) for name, d in decide.items()}
    head = "| series | windows | " + " | ".join(scores) + " |"
    rows = [head, "|" + "---|" * (len(scores) + 2)]
    for i, s in enumerate(series):
        cells = " | ".join(_cell(v[i]) for v in scores.values())
        rows.append(f"| {s.name} | {len(s.windows)} | {cells} |")
    total = sum(len(s.windows) for s in series)
    cells = " | ".join(f"**{_cell(overall(v))}**" for v in scores.values())
    rows.append(f"| **overall** | {total} | {cells} |")
    return "\n".join(rows)


def generated_table(decide: dict[str, Detector], trials: int = 20) -> str:
    """Markdown: per incident size (and on noise only), ``recall / FA per 1000``."""
    sizes: list[float | None] = [None, -0.2, -0.4, -0.6, 0.5, 1.0]
    rows = ["| incident | " + " | ".join(decide) + " |", "|" + "---|" * (len(decide) + 1)]
    for size in sizes:
        label = "none (noise)" if size is None else f"{size:+.0%}"
        cells = [_cell(overall(evaluate_generated(d, size, trials))) for d in decide.values()]
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def describe(sensitivity: Sensitivity) -> str:
    """The setting as ``name=value`` pairs (durations as 1 day, 8:00:00, ...)."""

    def text(value: object) -> str:
        if isinstance(value, pd.Timedelta):
            return str(value.to_pytimedelta())
        if isinstance(value, tuple):
            return "/".join(text(v) for v in value)
        return str(value)

    return ", ".join(f"{f.name}={text(getattr(sensitivity, f.name))}" for f in fields(sensitivity))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Score the detectors (recall / FA per 1000).")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--old", type=Path, default=None, help="the old pipeline/detector.py")
    args = parser.parse_args(argv)
    decide = detectors(args.old)
    print(f"Default setting: {describe(Sensitivity())}\n")
    print("Shared real series (window recall / false alarms per 1,000 points)\n")
    print(real_table(load_labelled(data_dir(args.data)), decide))
    print("\nGenerated incidents, 20 series per row (window recall / false alarms per 1,000)\n")
    print(generated_table(decide))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
