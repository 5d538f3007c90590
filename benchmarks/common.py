"""The benchmark registry and how figures are printed."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

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
