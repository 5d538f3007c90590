"""The ``detect`` command: a real labelled file without options, a file with gaps and jitter,
JSON output, the old options, and a clear error (exit 2, the file and the reason) for files it
cannot use."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.alerts import detect as cli
from pipeline.alerts.detector import detect, infer_slot, regular
from pipeline.alerts.scoring import data_dir

HEADER = "time,value,expected,lower,upper,change,model,hit,anomalous,alert"
REAL = "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def frame(out: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(out))


def real_file() -> Path:
    path = data_dir() / REAL
    assert path.exists(), f"shared series missing: {path}"
    return path


def test_a_real_file_without_options(capsys: pytest.CaptureFixture[str]) -> None:
    path = real_file()
    code, out, err = run(capsys, str(path))
    assert code == 0
    assert out.splitlines()[0] == HEADER
    raw = pd.read_csv(path, parse_dates=["timestamp"]).set_index("timestamp")["value"]
    slot = infer_slot(pd.DatetimeIndex(raw.index))
    expected = detect(regular(raw, slot), slot)
    printed = frame(out)
    assert list(printed["time"]) == list(
        pd.DatetimeIndex(expected.index[expected["alert"]]).strftime("%Y-%m-%dT%H:%M:%S")
    )
    assert printed["alert"].all() and len(printed) >= 1
    assert "'timestamp' x 'value'" in err and "slot 0:05:00" in err


def series_csv(
    tmp_path: Path, times: pd.DatetimeIndex, values: np.ndarray, name: str = "s.csv"
) -> Path:
    path = tmp_path / name
    pd.DataFrame({"when": times.strftime("%Y-%m-%d %H:%M:%S"), "host": "a", "cpu": values}).to_csv(
        path, index=False
    )
    return path


def spiky(days: int = 8) -> tuple[pd.DatetimeIndex, np.ndarray]:
    rng = np.random.default_rng(3)
    times = pd.date_range("2024-03-01", periods=288 * days, freq="5min")
    values = 40 + rng.normal(0, 1, len(times))
    if days > 6:
        values[288 * 6] = 95.0
    return times, values


def test_a_file_with_gaps_and_jitter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    times, values = spiky()
    keep = np.ones(len(times), bool)
    keep[288 * 4 : 288 * 4 + 30] = False  # 2.5 hours missing
    jittered = times + pd.to_timedelta(np.where(np.arange(len(times)) % 7 == 0, 60, 0), unit="s")
    path = series_csv(tmp_path, pd.DatetimeIndex(jittered[keep]), values[keep])
    code, out, _ = run(capsys, str(path))
    assert code == 0
    assert list(frame(out)["time"]) == [times[288 * 6].strftime("%Y-%m-%dT%H:%M:%S")]
    code, out, _ = run(capsys, str(path), "--all")
    every = frame(out)
    assert len(every) == len(times)  # the grid, gap included
    gap = every.iloc[288 * 4 : 288 * 4 + 30]
    assert gap["value"].isna().all() and not gap["hit"].any()


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    times, values = spiky()
    code, out, _ = run(capsys, str(series_csv(tmp_path, times, values)), "--format", "json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["time"] for r in rows] == [times[288 * 6].strftime("%Y-%m-%dT%H:%M:%S")]
    assert set(rows[0]) == set(HEADER.split(",")) and rows[0]["alert"] is True
    assert rows[0]["value"] == 95.0 and rows[0]["upper"] < 95.0


def test_the_old_options_still_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    times, values = spiky()
    path = series_csv(tmp_path, times, values)
    code, out, _ = run(
        capsys,
        str(path),
        "--time-column",
        "when",
        "--value-column",
        "cpu",
        "--slot",
        "15min",
        "--agg",
        "sum",
        "--k",
        "4",
        "--min-change",
        "0.1",
    )
    assert code == 0 and out.splitlines()[0] == HEADER
    code, out, _ = run(capsys, str(path), "--slot", "15min", "--agg", "mean", "--all")
    assert len(frame(out)) == len(times) // 3
    spike_and_day_after = [times[288 * i].strftime("%Y-%m-%dT%H:%M:%S") for i in (6, 7)]
    for flag in ("--rule", "--method"):  # the seed's rule flags the day after too
        code, out, _ = run(capsys, str(path), flag, "simple", "--threshold", "0.5")
        assert code == 0 and list(frame(out)["time"]) == spike_and_day_after
    code, out, _ = run(capsys, str(path), "--episodes")
    assert code == 0 and frame(out)["anomalous"].all() and len(frame(out)) >= 1


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty file"),
        ("when,cpu\n", "no data rows"),
        ("when,host\n2024-01-01 00:00,a\n2024-01-01 00:05,b\n", "no numeric column"),
        ("x,y\n1,2\n3,4\n", "no column of dates/times"),
        ("when,cpu\n2024-01-01 00:00,1\n", "fewer than two distinct timestamps"),
        ("when,cpu\nyesterday,1\nnoon,x\n", "no column of dates/times"),
    ],
)
def test_a_file_it_cannot_use_is_named_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, reason: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    code, out, err = run(capsys, str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"detect: {path}: ") and reason in err


def test_missing_unreadable_and_binary_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, str(tmp_path / "nope.csv"))
    assert code == 2 and "nope.csv: no such file" in err
    code, _, err = run(capsys, str(tmp_path))
    assert code == 2 and "is a directory" in err
    binary = tmp_path / "b.csv"
    binary.write_bytes(bytes(range(256)) * 4)
    code, _, err = run(capsys, str(binary))
    assert code == 2 and "b.csv:" in err


def test_a_named_column_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    times, values = spiky(1)
    code, _, err = run(capsys, str(series_csv(tmp_path, times, values)), "--time-column", "ts")
    assert code == 2 and "no column 'ts' (columns: when, host, cpu)" in err
