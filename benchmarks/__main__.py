"""Run every benchmark and print figures and ratios (``make bench``).

Benchmarks use tables of their own on the local stack (PostgreSQL ``ops.bench_*``, ClickHouse
databases prefixed ``b_``), never the demo's data.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("PIPELINE_CH_DB_PREFIX", "b_")


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
    # The long ones run by name only: `python -m benchmarks sales-10m inbox-1gb spark-10m`.
    default = [name for name in BENCHMARKS if name not in ("sales-10m", "inbox-1gb", "spark-10m")]
    for name in args.names or default:
        BENCHMARKS[name](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
