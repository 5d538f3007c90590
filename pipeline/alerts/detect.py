"""``detect``: the alert detector over any CSV time series, to backtest thresholds on your history.

It replays the series slot by slot exactly as the live 15-minute check decides: each slot's
decision uses only the slots before it (``pipeline.alerts.detector``). Rows are summed per slot by
default (counts); ``--agg mean`` or ``last`` for rates and gauges. Slots without rows count as 0
with ``--agg sum`` and as missing otherwise.

    python -m pipeline.alerts.detect views.csv --time-column ts --value-column views
    python -m pipeline.alerts.detect ctr.csv --time-column time --value-column ctr --agg mean \\
        --slot 15min --k 4 --min-change 0.1 --format json
    python -m pipeline.alerts.detect views.csv --rule simple --threshold 0.3     # the simple rule

Output: the anomalous slots (``--all``: every slot) with value, baseline, band and change, as CSV
(default) or JSON lines, on stdout.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from pipeline.alerts.detector import Sensitivity, detect, regular, simple_rule


class InputError(ValueError):
    pass


def load_series(
    path: Path, time_column: str, value_column: str, slot: pd.Timedelta, agg: str
) -> pd.Series:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read as CSV: {exc}") from None
    for column in (time_column, value_column):
        if column not in frame.columns:
            raise InputError(
                f"{path}: no column {column!r} (columns: {', '.join(map(str, frame.columns))})"
            )
    times = pd.to_datetime(frame[time_column], errors="coerce", utc=True)
    values = pd.to_numeric(frame[value_column], errors="coerce")
    bad = times.isna() | values.isna()
    if bad.all():
        raise InputError(f"{path}: no row has both a time and a number")
    if bad.any():
        first = int(bad.to_numpy().nonzero()[0][0]) + 2  # +1 header, +1 from zero
        print(f"warning: {int(bad.sum())} row(s) skipped (first: line {first})", file=sys.stderr)
    series = pd.Series(values[~bad].to_numpy(), index=times[~bad].dt.tz_localize(None))
    grouped = series.groupby(series.index.floor(slot))
    per_slot = {"sum": grouped.sum, "mean": grouped.mean, "last": grouped.last}[agg]()
    series = regular(per_slot, slot)
    return series.fillna(0.0) if agg == "sum" else series


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay the anomaly detector over a CSV series.")
    parser.add_argument("csv", type=Path)
    parser.add_argument("--time-column", default="time")
    parser.add_argument("--value-column", default="value")
    parser.add_argument("--slot", default="15min", help="slot length, e.g. 15min, 1h")
    parser.add_argument("--agg", choices=("sum", "mean", "last"), default="sum")
    parser.add_argument("--rule", choices=("robust", "simple"), default="robust")
    parser.add_argument("--k", type=float, default=Sensitivity.k)
    parser.add_argument("--min-change", type=float, default=Sensitivity.min_change)
    parser.add_argument("--days", type=int, default=Sensitivity.days)
    parser.add_argument("--threshold", type=float, default=0.3, help="--rule simple only")
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument("--all", action="store_true", help="print every slot, not only anomalies")
    args = parser.parse_args(argv)
    try:
        slot = pd.Timedelta(args.slot)
        if slot <= pd.Timedelta(0) or pd.Timedelta(days=1) % slot != pd.Timedelta(0):
            raise InputError(f"--slot {args.slot}: must divide a day")
        series = load_series(args.csv, args.time_column, args.value_column, slot, args.agg)
    except (InputError, ValueError) as exc:
        print(f"detect: {exc}", file=sys.stderr)
        return 2
    if args.rule == "simple":
        decisions = simple_rule(series, slot, args.threshold)
    else:
        sensitivity = Sensitivity(k=args.k, min_change=args.min_change, days=args.days)
        decisions = detect(series, slot, sensitivity)
    out = decisions if args.all else decisions[decisions["anomalous"]]
    out = out.rename_axis("slot").reset_index()
    if args.format == "json":
        out["slot"] = out["slot"].dt.strftime("%Y-%m-%dT%H:%M:%S")
        print(out.to_json(orient="records", lines=True), end="")
    else:
        print(out.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S"), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
