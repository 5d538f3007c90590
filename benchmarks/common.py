"""The benchmark registry and how figures are printed."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

# Where the benchmarks keep their data: none of the demo's nor the tests'. A test session with
# PIPELINE_TEST_NS=N uses Redis db 15 - N (6-15): sharing one, each flushes the other's flag
# index, which then rebuilds after every task. PIPELINE_BENCH_NS=N (1-4) gives a benchmark run
# databases of its own, so two runs side by side do not drop each other's tables.
BENCH_NS = os.environ.get("PIPELINE_BENCH_NS", "")
if BENCH_NS and not (BENCH_NS.isdigit() and 1 <= int(BENCH_NS) <= 4):
    raise SystemExit(f"PIPELINE_BENCH_NS must be 1-4, got {BENCH_NS!r}")
REDIS_DB = str(5 - int(BENCH_NS or 0))
PG_DATABASE = f"pipeline_bench{BENCH_NS}"
CH_PREFIX = f"b{BENCH_NS}_"
METRICS_INSTANCE = f"bench{BENCH_NS}"
if os.environ.get("PIPELINE_BENCH_IN_TESTS"):
    # Run by the test suite (a tiny run checks the JSON): inside the test session's namespace,
    # in a database beside its own, never the benchmarks' or another session's.
    REDIS_DB = os.environ["PIPELINE_REDIS_DB"]
    PG_DATABASE = f"{os.environ['PIPELINE_PG_DATABASE']}_bench"
    CH_PREFIX = f"{os.environ['PIPELINE_CH_DB_PREFIX']}b_"
    METRICS_INSTANCE = os.environ.get("PIPELINE_METRICS_INSTANCE", "tests")

# A benchmark prints its table and returns its figures (or records them with ``record``), which
# ``make bench`` keeps as JSON (``var/bench/<time>-<name>.json``) to compare runs over time.
Figures = dict[str, Any]
Bench = Callable[[argparse.Namespace], Figures | None]
BENCHMARKS: dict[str, Bench] = {}
RECORDED: Figures = {}


def record(**figures: Any) -> None:
    """Keep figures of the running benchmark for its JSON record (beside what it returns)."""
    RECORDED.update(figures)


def benchmark(name: str) -> Callable[[Bench], Bench]:
    def register(fn: Bench) -> Bench:
        BENCHMARKS[name] = fn
        return fn

    return register


def timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def report(title: str, figures: dict[str, float], baseline: str) -> None:
    """A table: each way of doing it, its time, and how much faster than the baseline (kept in
    the benchmark's JSON record under the title, in seconds)."""
    record(**{title.strip(): {label: round(seconds, 6) for label, seconds in figures.items()}})
    width = max(44, *(len(label) for label in figures))
    print(f"\n{title}")
    print(f"  {'':<{width}} {'seconds':>9}   speed-up")
    base = figures[baseline]
    for label, seconds in figures.items():
        ratio = "baseline" if label == baseline else f"{base / seconds:6.1f}x faster"
        print(f"  {label:<{width}} {seconds:9.3f}   {ratio}")
