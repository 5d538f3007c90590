"""Run every benchmark and print figures and ratios (``make bench``).

Benchmarks use tables of their own on the local stack (PostgreSQL ``ops.bench_*``, ClickHouse
databases prefixed ``b_``), never the demo's data.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from benchmarks.common import CH_PREFIX, METRICS_INSTANCE, REDIS_DB

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
    from benchmarks.common import BENCHMARKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument(
        "--files", type=int, nargs="+", default=[100, 1000, 5000], help="per-file overhead sizes"
    )
    args = parser.parse_args()
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}"
        )
    quiet_logging()
    # The long ones run by name only: `python -m benchmarks sales-10m inbox-1gb spark-10m`.
    default = [name for name in BENCHMARKS if name not in ("sales-10m", "inbox-1gb", "spark-10m")]
    took: dict[str, float] = {}
    for name in args.names or default:
        began = time.perf_counter()
        BENCHMARKS[name](args)
        took[name] = time.perf_counter() - began
    print("\nBenchmarks run")
    for name, seconds in took.items():
        print(f"  {name:<20} {seconds:8.1f} s")
    return 0


def quiet_logging() -> None:
    """The figures on the console; every task's records in var/logs/bench.log (JSON)."""
    import luigi.configuration

    from monitoring.logs import setup_logging

    setup_logging("bench", console_info=False, summary=False, tasks=False)
    luigi.configuration.get_config().set("core", "no_configure_logging", "true")


if __name__ == "__main__":
    sys.exit(main())
