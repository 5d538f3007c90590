"""``python -m benchmarks``: figures a program can read. A tiny sales year through the real flow
(a few thousand orders, two weeks, ten small files) prints one JSON object as its last line with
the figures the sales goals are judged on, and keeps the run as JSON under the runtime folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def test_the_sales_benchmark_prints_its_figures_as_json_and_keeps_them(
    stack: None, tmp_path: Path
) -> None:
    env = {**os.environ, "PIPELINE_RUNTIME_DIR": str(tmp_path), "PIPELINE_BENCH_IN_TESTS": "1"}
    env.pop("PIPELINE_BENCH_NS", None)
    command = ["-m", "benchmarks", "sales", "--json", "--orders", "3000", "--weeks", "2"]
    result = subprocess.run(
        [sys.executable, *command, "--files", "5", "--repeat", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    for name in ("flow_s", "floor_s", "seed_style_s", "peak_rss_mb"):
        assert isinstance(figures[name], float) and figures[name] > 0, name
    assert figures["rows"] == figures["orders"] == 3000 and figures["files"] == 8
    assert set(figures["per_file_ms"]) == {"5"} and figures["per_file_ms"]["5"] > 0
    assert figures["flow_vs_floor"] == pytest.approx(figures["flow_s"] / figures["floor_s"], 0.05)
    assert "Sales year" in result.stdout  # the human table stays
    (kept,) = (tmp_path / "bench").glob("*-sales.json")
    record = json.loads(kept.read_text())
    assert record["benchmark"] == "sales" and record["figures"] == figures
    assert record["cores"] == os.cpu_count() and record["at"]
