"""The weekly sales aggregates on both engines, PostgreSQL and Spark (``local[*]``, this machine),
for one week and for the whole year, at 1M rows (``spark``) and 10M rows (``spark-10m``, by name
only: it takes minutes); and the history job (a year of archived gzip files cleaned to Parquet).

The year's rows go into ``sales.sales`` by COPY (not through the inbox: that is the ``sales``
benchmark), in a database of its own (``pipeline_bench_spark``). Each engine writes the same
``sales.sales_agg``; Spark's figures are warm (the driver started once, its start given apart):

- week: the flow's unit (the week and the one before read, aggregated, stored);
- year, week by week: what ``SalesBackfill`` does (52 weeks, one after the other);
- year, one job: the whole year read once and aggregated in one Spark job, which is how Spark
  would be used for a year.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from benchmarks.common import PG_DATABASE, benchmark

WEEK = dt.timedelta(weeks=1)
T = TypeVar("T")


def _load_year(raw: Path) -> int:
    """Every generated file into ``sales.sales`` by COPY (duplicates dropped per file, as the
    inbox drops them), then the BRIN summary and statistics."""
    import pandas as pd

    from pipeline.inbox.contract import SALES
    from pipeline.inbox.load import ensure_table
    from pipeline.systems import postgres
    from pipeline.systems.postgres import copy_csv, ensure_marker_table, transaction

    with transaction() as cur:
        postgres.run(cur, "benchmarks/reset_tables")
        ensure_marker_table(cur)
        ensure_table(cur, SALES)
    rows = 0
    for number, path in enumerate(sorted(raw.iterdir())):
        frame = pd.read_csv(path, dtype=str).drop_duplicates("sale_id")
        frame["file_id"] = f"bench-{number:04d}"
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        buffer.seek(0)
        with transaction() as cur:
            rows += copy_csv(cur, SALES.pg_table, [*SALES.names, "file_id"], buffer)
    with transaction() as cur:
        postgres.summarize_brin(cur, SALES.pg_table)
        postgres.run(cur, "benchmarks/analyze_sales")
    return rows


def _store(week: dt.date, rows: list[tuple[object, ...]] | None) -> int:
    """The week into ``sales.sales_agg`` as the flow stores it (``rows`` None: computed by
    PostgreSQL)."""
    from pipeline.sales.engines import insert_week
    from pipeline.systems import postgres
    from pipeline.systems.postgres import transaction

    computed = None
    if rows is not None:
        from pipeline.sales.spark import SparkWeek

        computed = SparkWeek(rows, "", "", 0.0)
    with transaction() as cur:
        postgres.run(cur, "sales/prefer_index")
        postgres.run(cur, "sales/create_sales_agg")
        postgres.run(cur, "sales/delete_week", {"week": week})
        return insert_week(cur, week, computed)


def _timed(fn: Callable[[], T]) -> tuple[float, T]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def _archive(raw: Path, runtime: Path) -> list[Path]:
    """The year's files gzipped as the inbox archives them (archive/YYYY/MM/DD/<id>__<name>.gz)."""
    folder = runtime / "archive" / "2024" / "09" / "02"
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number, path in enumerate(sorted(raw.iterdir())):
        target = folder / f"bench-{number:04d}__{path.name}.gz"
        with open(path, "rb") as source, gzip.open(target, "wb", compresslevel=6) as out:
            shutil.copyfileobj(source, out, 1 << 20)
        files.append(target)
    return files


def _run(orders: int) -> None:
    from benchmarks.sales_bench import _isolate
    from demo.sales_generator import SalesSpec, write_year

    spec = SalesSpec(total_orders=orders)
    weeks = [spec.week_start(w) for w in range(1, spec.weeks + 1)]
    middle = weeks[len(weeks) // 2]
    with tempfile.TemporaryDirectory(prefix="spark-bench-") as tmp:
        root = Path(tmp)
        runtime = root / "runtime"
        _isolate(runtime, f"{PG_DATABASE}_spark")
        raw = root / "raw"
        write_year(raw, spec)
        load_s, rows = _timed(lambda: _load_year(raw))
        print(
            f"\nSales aggregates on both engines: {rows:,} rows in sales.sales"
            f" ({load_s:.1f} s COPY)"
        )
        line = "  {:<58} {:8.2f} s   {}"

        from pipeline.sales.spark import aggregate_weeks, week_aggregates
        from pipeline.systems.spark import read_postgres, session

        pg_week, _ = _timed(lambda: _store(middle, None))
        print(line.format("PostgreSQL: a week", pg_week, "SQL with window functions"), flush=True)
        start_s, spark = _timed(session)
        print(line.format("Spark: the driver starts (once per process)", start_s, ""), flush=True)
        _store(weeks[1], week_aggregates(spark, weeks[1]).rows)  # warms the JVM up
        spark_week, _ = _timed(lambda: _store(middle, week_aggregates(spark, middle).rows))
        print(
            line.format(
                "Spark: a week (JDBC read, aggregate, collect, COPY)",
                spark_week,
                f"{spark_week / pg_week:.1f}x PostgreSQL's time",
            ),
            flush=True,
        )
        pg_year, _ = _timed(lambda: [_store(w, None) for w in weeks])
        print(line.format("PostgreSQL: the year, week by week", pg_year, ""), flush=True)
        spark_weekly, _ = _timed(lambda: [_store(w, week_aggregates(spark, w).rows) for w in weeks])
        print(
            line.format(
                "Spark: the year, week by week (SalesBackfill)",
                spark_weekly,
                f"{spark_weekly / pg_year:.1f}x PostgreSQL's time",
            ),
            flush=True,
        )

        def one_job() -> int:
            first, end = weeks[0] - WEEK, weeks[-1] + WEEK
            frame = read_postgres(
                spark, "sales/spark_rows", {"start": first, "end": end}, "sale_date", first, end
            )
            collected = [tuple(r) for r in aggregate_weeks(frame, weeks[0], weeks[-1]).collect()]
            for week in weeks:
                _store(week, [r for r in collected if r[0] == week])
            return len(collected)

        spark_year, agg_rows = _timed(one_job)
        print(
            line.format(
                "Spark: the year in one job (one read, 52 weeks stored)",
                spark_year,
                f"{agg_rows:,} aggregate rows; {spark_year / pg_year:.1f}x PostgreSQL's",
            ),
            flush=True,
        )
        files = _archive(raw, runtime)
        history = runtime / "sales" / "history"
        from pipeline.sales.spark import clean_history

        history_s, counts = _timed(
            lambda: clean_history(spark, files, history / "clean", history / "rejects")
        )
        print(
            line.format(
                f"Spark: the history job ({len(files)} gzip files -> Parquet)",
                history_s,
                f"{counts.written:,} rows written",
            ),
            flush=True,
        )


@benchmark("spark")
def spark_bench(args: argparse.Namespace) -> None:
    _run(1_000_000)


@benchmark("spark-10m")
def spark_ten_million(args: argparse.Namespace) -> None:
    """The same at 10,000,000 orders (by name: `python -m benchmarks spark-10m`)."""
    _run(10_000_000)
