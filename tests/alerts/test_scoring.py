"""The scoring (window recall, false alarms per 1,000 points) on small hand-made cases, and the
mapping of grid decisions back to a file's timestamps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from pipeline.alerts.scoring import Labelled, evaluate, flagged_times, load_labelled, overall, score

T = pd.Timestamp


def at(*hours: float) -> list[pd.Timestamp]:
    return [T("2024-01-01") + pd.Timedelta(hours=h) for h in hours]


WINDOWS = [(at(2)[0], at(4)[0]), (at(10)[0], at(12)[0])]


def test_one_window_found_one_flag_outside() -> None:
    s = score(at(3, 7), WINDOWS, points=100)
    assert (s.windows, s.found, s.false_alarms) == (2, 1, 1)
    assert s.recall == 0.5
    assert s.fa_per_1000 == 10.0


def test_window_ends_are_inside_and_a_window_counts_once() -> None:
    s = score(at(2, 4, 3, 10), WINDOWS, points=1000)
    assert (s.found, s.false_alarms) == (2, 0)
    assert s.recall == 1.0 and s.fa_per_1000 == 0.0


def test_just_outside_a_window_is_a_false_alarm() -> None:
    s = score(at(1.99, 4.01), WINDOWS, points=500)
    assert (s.found, s.false_alarms) == (0, 2)
    assert s.fa_per_1000 == 4.0


def test_overlapping_windows_a_flag_in_both_is_not_false() -> None:
    windows = [(at(0)[0], at(5)[0]), (at(4)[0], at(8)[0])]
    s = score(at(4.5), windows, points=10)
    assert (s.found, s.false_alarms) == (2, 0)


def test_no_flags_and_no_windows() -> None:
    assert score([], WINDOWS, points=50).recall == 0.0
    empty = score(at(1, 2), [], points=2000)
    assert math.isnan(empty.recall) and empty.false_alarms == 2 and empty.fa_per_1000 == 1.0


def test_the_same_timestamp_flagged_twice_counts_once() -> None:
    assert score(at(7, 7), WINDOWS, points=1000).false_alarms == 1


def test_overall_pools_windows_and_averages_false_alarms_per_series() -> None:
    a = score(at(3, 7), WINDOWS, points=1000)  # 1/2 found, 1.0 FA per 1000
    b = score(at(7, 8, 9), [], points=1000)  # no windows, 3.0 FA per 1000
    c = score(at(3, 11), WINDOWS, points=4000)  # 2/2 found, 0.0
    total = overall([a, b, c])
    assert (total.windows, total.found) == (4, 3)
    assert total.recall == 0.75
    assert total.fa_per_1000 == pytest.approx((1.0 + 3.0 + 0.0) / 3)


def test_flags_on_the_grid_become_the_files_timestamps() -> None:
    # 5-minute rows with jitter, a duplicate and a gap; the detector flags two grid slots.
    times = pd.DatetimeIndex(
        [
            "2024-01-01 00:00",
            "2024-01-01 00:05",
            "2024-01-01 00:11",
            "2024-01-01 00:11",
            "2024-01-01 00:15",
            "2024-01-01 00:35",
            "2024-01-01 00:40",
        ]
    )
    raw = pd.Series([1.0, 2, 3, 5, 4, 6, 7], index=times)

    def decide(grid: pd.Series, slot: pd.Timedelta) -> pd.Series:
        assert slot == pd.Timedelta(minutes=5)
        assert grid.loc["2024-01-01 00:10"] == 4.0  # the two 00:11 rows, averaged
        gap = (grid.index >= T("2024-01-01 00:20")) & (grid.index <= T("2024-01-01 00:30"))
        assert grid[gap].isna().all() and gap.sum() == 3  # the gap
        return pd.Series(
            grid.index.isin(pd.DatetimeIndex(["2024-01-01 00:10", "2024-01-01 00:35"])),
            index=grid.index,
        )

    assert list(flagged_times(raw, decide)) == [T("2024-01-01 00:11"), T("2024-01-01 00:35")]


def test_load_and_evaluate_a_labelled_folder(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    index = pd.date_range("2024-01-01", periods=10, freq="1h")
    pd.DataFrame({"timestamp": index, "value": range(10)}).to_csv(
        tmp_path / "a" / "s.csv", index=False
    )
    (tmp_path / "windows.json").write_text(
        json.dumps({"a/s.csv": [["2024-01-01 02:00:00.000000", "2024-01-01 03:00:00.000000"]]})
    )
    [series] = load_labelled(tmp_path)
    assert isinstance(series, Labelled) and len(series.raw) == 10
    assert series.windows == [(T("2024-01-01 02:00"), T("2024-01-01 03:00"))]

    def flag_hours(grid: pd.Series, slot: pd.Timedelta) -> pd.Series:
        return pd.Series(pd.DatetimeIndex(grid.index).hour.isin([3, 7]), index=grid.index)

    [s] = evaluate([series], flag_hours)
    assert (s.found, s.false_alarms, s.points) == (1, 1, 10)
    assert s.fa_per_1000 == 100.0
