"""The benchmark registry and how figures are printed."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

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

Bench = Callable[[argparse.Namespace], None]
BENCHMARKS: dict[str, Bench] = {}


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
    """A table: each way of doing it, its time, and how much faster than the baseline."""
    width = max(44, *(len(label) for label in figures))
    print(f"\n{title}")
    print(f"  {'':<{width}} {'seconds':>9}   speed-up")
    base = figures[baseline]
    for label, seconds in figures.items():
        ratio = "baseline" if label == baseline else f"{base / seconds:6.1f}x faster"
        print(f"  {label:<{width}} {seconds:9.3f}   {ratio}")
