"""``detect``: the alert detector over any CSV time series, to backtest it on your history.

Without options it finds the time column (the first whose values parse as dates) and the value
column (the first other numeric column; one named ``value`` wins), infers the slot length from
the median spacing, puts the rows on that regular grid (several rows in a slot averaged, a slot
without rows missing: never flagged) and replays the detector slot by slot exactly as the live
check decides, each slot from the past only (``detector.detect``).

    detect series.csv                                         # the alerts, as CSV
    detect series.csv --format json                           # ... as JSON lines
    detect views.csv --time-column ts --value-column views --slot 15min --agg sum
    detect series.csv --episodes                              # every slot of every episode
    detect series.csv --rule simple --threshold 0.3           # the seed's rule

With ``--slot`` the rows are grouped into clock-aligned slots of that length instead (``--agg
sum`` for event rows: a slot without rows is 0 then). Output: by default the first slot of each
anomalous episode (one alert per episode), ``--episodes`` every slot of an episode, ``--all``
every slot; columns ``time,value,expected,lower,upper,change,model,hit,anomalous,alert`` (times
in UTC). A file it cannot use is named with the reason on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.alerts.detector import (
    Sensitivity,
    detect,
    grid_origin,
    infer_slot,
    regular,
    simple_rule,
    snap,
)

OUTPUT_COLUMNS = [
    "time",
    "value",
    "expected",
    "lower",
    "upper",
    "change",
    "model",
    "hit",
    "anomalous",
    "alert",
]
MOSTLY = 0.9  # a column is a time / number column if this share of its non-empty cells parse
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


class InputError(ValueError):
    """A file the command cannot use; the message names the file and the reason."""


@dataclass(frozen=True)
class Loaded:
    """A file's series on its regular grid, the slot length and the columns used."""

    series: pd.Series
    slot: pd.Timedelta
    time_column: str
    value_column: str
    rows: int


# -- reading --------------------------------------------------------------------------------------
def read_table(path: Path) -> pd.DataFrame:
    """The CSV as text cells; InputError if unreadable or without rows."""
    try:
        frame = pd.read_csv(path, dtype=str, skipinitialspace=True)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a CSV file") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as CSV ({exc})") from None
    if frame.empty:
        raise InputError(f"{path}: no data rows (columns: {', '.join(map(str, frame.columns))})")
    return frame


def _as_times(cells: pd.Series) -> pd.Series:
    """Cells as UTC-naive timestamps (NaT where not a date)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
        times = pd.to_datetime(cells, errors="coerce", utc=True, format="mixed")
    return times.dt.tz_localize(None)


def _share(parsed: pd.Series, cells: pd.Series) -> float:
    """The share of non-empty cells that parsed."""
    present = cells.notna() & (cells.str.strip() != "")
    return float(parsed[present].notna().mean()) if present.any() else 0.0


def _is_numeric(cells: pd.Series) -> bool:
    return _share(pd.to_numeric(cells, errors="coerce"), cells) >= MOSTLY


def find_time_column(frame: pd.DataFrame, path: Path) -> str:
    """The first column (not a plain number column) whose cells are mostly dates."""
    for column in frame.columns:
        cells = frame[column]
        if not _is_numeric(cells) and _share(_as_times(cells), cells) >= MOSTLY:
            return str(column)
    raise InputError(
        f"{path}: no column of dates/times (columns: {', '.join(map(str, frame.columns))});"
        " name one with --time-column"
    )


def find_value_column(frame: pd.DataFrame, path: Path, time_column: str) -> str:
    """The numeric column other than the time column: one named ``value``, else the first."""
    numeric = [str(c) for c in frame.columns if c != time_column and _is_numeric(frame[c])]
    if not numeric:
        raise InputError(
            f"{path}: no numeric column besides {time_column!r}"
            f" (columns: {', '.join(map(str, frame.columns))}); name one with --value-column"
        )
    named = [c for c in numeric if c.strip().lower() == "value"]
    return (named or numeric)[0]


def _column(frame: pd.DataFrame, path: Path, name: str) -> pd.Series:
    if name not in frame.columns:
        raise InputError(
            f"{path}: no column {name!r} (columns: {', '.join(map(str, frame.columns))})"
        )
    return frame[name]


def _rows(frame: pd.DataFrame, path: Path, time_column: str, value_column: str) -> pd.Series:
    """The rows with both a time and a number, as values by time (sorted)."""
    times = _as_times(_column(frame, path, time_column))
    values = pd.to_numeric(_column(frame, path, value_column), errors="coerce")
    bad = times.isna() | values.isna()
    if bad.all():
        raise InputError(
            f"{path}: no row has both a time in {time_column!r} and a number in {value_column!r}"
        )
    if bad.any():
        first = int(bad.to_numpy().nonzero()[0][0]) + 2  # +1 header, +1 from zero
        print(
            f"warning: {path}: {int(bad.sum())} row(s) skipped (first: line {first})",
            file=sys.stderr,
        )
    return pd.Series(values[~bad].to_numpy(), index=pd.DatetimeIndex(times[~bad])).sort_index()


def to_grid(rows: pd.Series, slot: pd.Timedelta | None, agg: str) -> tuple[pd.Series, pd.Timedelta]:
    """The rows on a regular grid. Without ``slot``: the inferred slot, each row moved to the
    nearest slot of the grid most rows lie on (``grid_origin``). With it: clock-aligned slots of
    that length. Rows in one slot are combined by ``agg``; empty slots are NaN (0 with ``agg``
    sum)."""
    index = pd.DatetimeIndex(rows.index)
    if slot is None:
        slot = infer_slot(index)
        slots = snap(index, grid_origin(index, slot), slot)
    else:
        slots = index.floor(slot)
    per_slot = rows.groupby(slots).agg(agg)
    grid = regular(per_slot, slot)
    return (grid.fillna(0.0) if agg == "sum" else grid), slot


def load(
    path: Path,
    time_column: str | None = None,
    value_column: str | None = None,
    slot: pd.Timedelta | None = None,
    agg: str = "mean",
) -> Loaded:
    """Read ``path`` and put its series on a regular grid (columns found if not given)."""
    frame = read_table(path)
    time_column = time_column or find_time_column(frame, path)
    value_column = value_column or find_value_column(frame, path, time_column)
    rows = _rows(frame, path, time_column, value_column)
    try:
        series, slot = to_grid(rows, slot, agg)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None
    return Loaded(series, slot, time_column, value_column, len(rows))


# -- the command ----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="detect", description="Replay the anomaly detector over a CSV time series."
    )
    parser.add_argument("csv", type=Path)
    parser.add_argument("--time-column", help="default: the first column of dates")
    parser.add_argument("--value-column", help="default: 'value' or the first numeric column")
    parser.add_argument("--slot", help="slot length, e.g. 15min, 1h (default: inferred)")
    parser.add_argument("--agg", choices=("mean", "sum", "last"), default="mean")
    parser.add_argument(
        "--rule", "--method", dest="rule", choices=("robust", "simple"), default="robust"
    )
    parser.add_argument("--k", type=float, default=Sensitivity.k)
    parser.add_argument("--min-change", type=float, default=Sensitivity.min_change)
    parser.add_argument("--days", type=int, default=Sensitivity.days)
    parser.add_argument("--risk", type=float, default=Sensitivity.risk)
    parser.add_argument("--threshold", type=float, default=0.3, help="--rule simple only")
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--episodes", action="store_true", help="every slot of every episode")
    shown.add_argument("--all", action="store_true", help="every slot")
    return parser.parse_args(argv)


def _slot(text: str | None) -> pd.Timedelta | None:
    if text is None:
        return None
    try:
        slot = pd.Timedelta(text)
    except ValueError:
        raise InputError(f"--slot {text}: not a duration (e.g. 5min, 1h)") from None
    if slot <= pd.Timedelta(0):
        raise InputError(f"--slot {text}: must be positive")
    return slot


def decide(loaded: Loaded, args: argparse.Namespace) -> pd.DataFrame:
    """The decisions of the chosen rule on the loaded series."""
    if args.rule == "simple":
        return simple_rule(loaded.series, loaded.slot, args.threshold)
    sensitivity = Sensitivity(k=args.k, min_change=args.min_change, days=args.days, risk=args.risk)
    return detect(loaded.series, loaded.slot, sensitivity)


def render(decisions: pd.DataFrame, args: argparse.Namespace) -> str:
    """The selected rows as CSV or JSON lines."""
    shown = (
        decisions if args.all else decisions[decisions["anomalous" if args.episodes else "alert"]]
    )
    out = shown.rename_axis("time").reset_index()[OUTPUT_COLUMNS]
    out["time"] = pd.DatetimeIndex(out["time"]).strftime(TIME_FORMAT)
    if args.format == "json":
        text: str = out.to_json(orient="records", lines=True) or ""
        return text if not text or text.endswith("\n") else text + "\n"
    return out.to_csv(index=False)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        loaded = load(args.csv, args.time_column, args.value_column, _slot(args.slot), args.agg)
    except InputError as exc:
        print(f"detect: {exc}", file=sys.stderr)
        return 2
    decisions = decide(loaded, args)
    print(render(decisions, args), end="")
    print(
        f"detect: {args.csv}: {loaded.rows} rows, {loaded.time_column!r} x"
        f" {loaded.value_column!r}, slot {loaded.slot.to_pytimedelta()}, {len(decisions)} slots,"
        f" {int(decisions['alert'].sum())} alert(s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
