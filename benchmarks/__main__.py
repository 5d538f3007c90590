"""Run every benchmark and print figures and ratios (``make bench``).

Benchmarks use tables of their own on the local stack (PostgreSQL ``ops.bench_*``, ClickHouse
databases prefixed ``b_``), never the demo's data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import CH_PREFIX, METRICS_INSTANCE, RECORDED, REDIS_DB, Figures
from pipeline.core.files import atomic_write

os.environ.setdefault("PIPELINE_CH_DB_PREFIX", CH_PREFIX)
# A Redis database and a metrics group of their own: the benchmarks' runtime folders have flags
# of their own, and the demo's flag index and metrics stay the demo's.
os.environ.setdefault("PIPELINE_REDIS_DB", REDIS_DB)
os.environ.setdefault("PIPELINE_METRICS_INSTANCE", METRICS_INSTANCE)


def main() -> int:
    import benchmarks.app_bench  # noqa: F401  (registers)
    import benchmarks.flags_bench  # noqa: F401  (registers)
    import benchmarks.inbox_bench  # noqa: F401  (registers)
    import benchmarks.loads  # noqa: F401  (registers)
    import benchmarks.sales_bench  # noqa: F401  (registers)
    import benchmarks.spark_bench  # noqa: F401  (registers)
    import benchmarks.workers_bench  # noqa: F401  (registers)
    from benchmarks.common import BENCHMARKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument(
        "--files", type=int, nargs="+", default=[100, 1000, 5000], help="per-file overhead sizes"
    )
    parser.add_argument(
        "--orders", type=int, default=1_000_000, help="sales: orders in the year (default 1M)"
    )
    parser.add_argument("--weeks", type=int, default=52, help="sales: weeks in the year")
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="sales: runs of the flow and of the floor, taking turns; the figures are medians",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2, 4], help="inbox-workers: worker counts"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the figures as one JSON object on the last line (each run's figures are"
        " also kept under <runtime>/bench/ as JSON)",
    )
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}"
        )
    quiet_logging()
    # Before any benchmark points PIPELINE_RUNTIME_DIR at a folder of its own.
    from config.settings import load_settings

    kept = load_settings().paths.runtime / "bench"
    # The long ones run by name only: `python -m benchmarks sales-10m inbox-1gb spark-10m`.
    default = [name for name in BENCHMARKS if name not in ("sales-10m", "inbox-1gb", "spark-10m")]
    took: dict[str, float] = {}
    results: dict[str, Figures] = {}
    for name in args.names or default:
        RECORDED.clear()
        at = dt.datetime.now(dt.UTC)
        began = time.perf_counter()
        returned = BENCHMARKS[name](args)
        took[name] = time.perf_counter() - began
        results[name] = {**RECORDED, **(returned or {})}
        keep(kept, name, at, took[name], results[name])
    print("\nBenchmarks run")
    for name, seconds in took.items():
        print(f"  {name:<20} {seconds:8.1f} s")
    print(f"  figures kept as JSON in {kept}/")
    if args.json:  # one object, the last line: one benchmark's figures, or each by name
        only = next(iter(results.values())) if len(results) == 1 else results
        print(json.dumps(only, sort_keys=True, default=str))
    return 0


def keep(folder: Path, name: str, at: dt.datetime, seconds: float, figures: Figures) -> Path:
    """One run of one benchmark as JSON (``<folder>/<UTC time>-<name>.json``), with what it ran
    on, so runs can be compared over time."""
    path = folder / f"{at:%Y%m%dT%H%M%SZ}-{name}.json"
    document = {
        "benchmark": name,
        "at": at.isoformat(timespec="seconds"),
        "seconds": round(seconds, 3),
        "host": socket.gethostname(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "commit": _commit(),
        "figures": figures,
    }
    atomic_write(path, json.dumps(document, indent=2, sort_keys=True, default=str) + "\n", 0o644)
    return path


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def quiet_logging() -> None:
    """The figures on the console; every task's records in var/logs/bench.log (JSON)."""
    import luigi.configuration

    from monitoring.logs import setup_logging

    setup_logging("bench", console_info=False, summary=False, tasks=False)
    luigi.configuration.get_config().set("core", "no_configure_logging", "true")


if __name__ == "__main__":
    sys.exit(main())
