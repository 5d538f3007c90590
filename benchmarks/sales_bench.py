"""The sales year from inbox to ClickHouse through the real flow, against (a) the physical floor
measured in the same run (psql \\copy of the same rows + the aggregate SQL + one ClickHouse insert
of the aggregates) and (b) the seed-style baseline (pandas.to_sql + 1,000-row ClickHouse inserts);
the per-file overhead for many small files; and the peak memory of the run.

Everything runs against a database of its own (``pipeline_bench``), ClickHouse databases prefixed
``b_``, Redis db 5 and a temporary runtime folder (``benchmarks.common``: ``PIPELINE_BENCH_NS``
gives a run of its own); nothing of the demo's is touched.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import CH_PREFIX, PG_DATABASE, REDIS_DB, benchmark


def _isolate(runtime: Path, database: str = PG_DATABASE) -> None:
    os.environ.update(
        {
            "PIPELINE_RUNTIME_DIR": str(runtime),
            "PIPELINE_PG_DATABASE": database,
            "PIPELINE_CH_DB_PREFIX": CH_PREFIX,
            "PIPELINE_REDIS_DB": REDIS_DB,
        }
    )
    import psycopg2

    from config.settings import load_settings
    from pipeline.bootstrap import create_clickhouse_databases, create_postgres_schemas
    from pipeline.systems import postgres
    from pipeline.systems.redis import connect

    settings = load_settings()
    admin = psycopg2.connect(**{**settings.postgres.connect_kwargs(), "dbname": "pipeline"})
    admin.autocommit = True
    with admin.cursor() as cur:
        postgres.run(cur, "stack/drop_database", database=database)
        postgres.run(cur, "stack/create_database", database=database)
    admin.close()
    create_postgres_schemas(settings)
    create_clickhouse_databases(settings)
    connect(settings.redis).flushdb()


def _reset_tables() -> None:
    from pipeline.systems import postgres
    from pipeline.systems.clickhouse import ClickHouse

    with postgres.transaction() as cur:
        postgres.run(cur, "benchmarks/reset_tables")
    postgres.forget_made_tables()  # made again by the next run
    ch = ClickHouse()
    ch.execute("stack/drop_database", database=ch.settings.database("sales"))
    ch.execute("stack/drop_database", database=ch.settings.database("ops"))
    ch.execute("stack/create_database", database=ch.settings.database("sales"))
    ch.execute("stack/create_database", database=ch.settings.database("ops"))


def peak_rss_mb() -> float:
    """The largest resident set of this process and of any worker it forked (Luigi's workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def _flow(inbox_files: Path, runtime: Path, workers: int, spec: object = None) -> tuple[float, int]:
    import luigi

    from config.settings import load_settings
    from demo.sales_generator import SalesSpec
    from pipeline.sales.tasks import SalesBackfill
    from pipeline.systems import postgres
    from pipeline.systems.redis import connect

    _reset_tables()
    connect(load_settings().redis).flushdb()
    for folder in ("flags", "work", "archive", "quarantine", "outbox"):
        shutil.rmtree(runtime / folder, ignore_errors=True)
    inbox = runtime / "inbox"
    shutil.rmtree(inbox, ignore_errors=True)
    shutil.copytree(inbox_files, inbox)
    old = time.time() - 60
    for path in inbox.iterdir():
        os.utime(path, (old, old))
    spec = spec or SalesSpec()
    assert isinstance(spec, SalesSpec)
    began = time.perf_counter()
    ok = luigi.build(
        [SalesBackfill(start=spec.first_monday, end=spec.week_start(spec.weeks))],
        local_scheduler=True,
        workers=workers,
        log_level="WARNING",
    )
    seconds = time.perf_counter() - began
    if not ok:
        raise RuntimeError("the flow failed during the benchmark")
    with postgres.transaction() as cur:
        rows = int(postgres.fetch_value(cur, "benchmarks/count_sales"))
    return seconds, rows


def _floor(raw: Path) -> float:
    """psql \\copy of every file + the aggregate SQL + one ClickHouse insert of the result."""
    from config.settings import load_settings
    from pipeline.systems import postgres
    from pipeline.systems.clickhouse import ClickHouse

    _reset_tables()
    pg = load_settings().postgres
    with postgres.transaction() as cur:
        postgres.run(cur, "benchmarks/create_floor")
    env = {**os.environ, "PGPASSWORD": pg.password}
    began = time.perf_counter()
    script = "".join(
        f"\\copy sales.floor FROM '{p}' WITH (FORMAT csv, HEADER true)\n"
        for p in sorted(raw.iterdir())
    )
    subprocess.run(
        [
            "psql",
            "-h",
            pg.host,
            "-p",
            str(pg.port),
            "-U",
            pg.user,
            "-d",
            pg.database,
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
        ],
        input=script,
        text=True,
        env=env,
        check=True,
    )
    with postgres.transaction() as cur:
        postgres.run(cur, "benchmarks/floor_aggregate")
        postgres.run(cur, "benchmarks/floor_rows")
        rows = cur.fetchall()
    ch = ClickHouse()
    ch.execute("sales/create_sales_agg")
    from pipeline.systems.clickhouse import csv_chunks

    ch.insert("sales/insert_sales_agg", csv_chunks(rows))
    return time.perf_counter() - began


def _baseline(raw: Path, share: int = 10) -> dict[str, float]:
    """The requirement's way, step by step as its solution runs each week: the week's files read
    with pandas and de-duplicated, their rows inserted one by one (what ``pandas.to_sql`` does
    row by row; to_sql itself needs SQLAlchemy 2, which luigid's task history cannot use), the
    week's aggregates deleted and computed again in PostgreSQL with groupings and a window
    function into an aggregate table, read back and inserted into ClickHouse 1,000 rows at a
    time with the import date. Timed on every ``share``-th week and scaled by rows: the seconds,
    and how they split (row inserts, the aggregate, ClickHouse's inserts, the rest)."""
    import datetime as dt

    import pandas as pd

    from pipeline.inbox.contract import SALES
    from pipeline.systems import postgres
    from pipeline.systems.clickhouse import ClickHouse, csv_chunks
    from pipeline.systems.postgres import transaction

    weeks: dict[dt.date, list[Path]] = {}
    total_rows = 0
    for path in sorted(raw.iterdir()):
        found = SALES.match(path.name)
        if found is None:
            continue
        monday = dt.date.fromisocalendar(int(found["year"]), int(found["week"]), 1)
        weeks.setdefault(monday, []).append(path)
    timed = sorted(weeks)[::share]
    _reset_tables()
    ch = ClickHouse()
    ch.execute("sales/create_sales_agg")
    with transaction() as cur:
        postgres.run(cur, "benchmarks/create_floor")
        postgres.run(cur, "benchmarks/create_baseline")
    began = time.perf_counter()
    inserts_s = aggregate_s = clickhouse_s = 0.0
    rows_timed = 0
    for week in timed:
        frame = pd.concat([pd.read_csv(path) for path in weeks[week]]).drop_duplicates("sale_id")
        rows_timed += len(frame)
        at = time.perf_counter()
        with transaction() as cur:  # the requirement's way being measured: row by row
            cur.executemany(
                "INSERT INTO sales.baseline VALUES (%s, %s, %s, %s, %s, %s, %s)",
                frame.itertuples(index=False, name=None),
            )
        inserts_s += time.perf_counter() - at
        at = time.perf_counter()
        with transaction() as cur:
            postgres.run(cur, "benchmarks/baseline_clear_week", {"week": week})
            postgres.run(cur, "benchmarks/baseline_aggregate", {"week": week})
            postgres.run(cur, "benchmarks/baseline_week_rows", {"week": week})
            aggregates = cur.fetchall()
        aggregate_s += time.perf_counter() - at
        imported = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
        rows = [
            (*row, 0.0, None, None, imported.date(), imported)  # the flow's extra columns empty
            for row in aggregates
        ]
        at = time.perf_counter()
        for start in range(0, len(rows), 1000):
            chunk = b"".join(csv_chunks(rows[start : start + 1000]))
            ch.insert("sales/insert_sales_agg", io.BytesIO(chunk))
        clickhouse_s += time.perf_counter() - at
    for path in (p for paths in weeks.values() for p in paths):
        with open(path, "rb") as handle:
            total_rows += sum(1 for _ in handle) - 1
    scale = total_rows / max(1, rows_timed)
    return {
        "seconds": (time.perf_counter() - began) * scale,
        "postgres_row_inserts_s": inserts_s * scale,
        "postgres_aggregate_s": aggregate_s * scale,
        "clickhouse_inserts_s": clickhouse_s * scale,
        "us_per_row_insert": inserts_s / max(1, rows_timed) * 1e6,
        "weeks_timed": len(timed),
        "weeks_total": len(weeks),
        "share_timed": 1 / scale,
    }


def _small_files(runtime: Path, count: int, rows_per_file: int = 20) -> float:
    """ms per file for ``count`` small files through the inbox (ProcessInbox)."""
    import luigi

    from config.settings import load_settings
    from pipeline.inbox.tasks import ProcessInbox
    from pipeline.systems.redis import connect

    _reset_tables()
    connect(load_settings().redis).flushdb()
    for folder in ("flags", "work", "archive", "quarantine", "inbox"):
        shutil.rmtree(runtime / folder, ignore_errors=True)
    inbox = runtime / "inbox"
    inbox.mkdir(parents=True)
    header = "sale_id,customer_id,product_id,quantity,sale_date,sale_amount,region\n"
    sale = 1
    for i in range(count):
        week, region = divmod(i, 4)
        region_name = ("north", "south", "east", "west")[region]
        name = f"sales_{2000 + week // 52}_w{week % 52 + 1:02d}_{region_name}.csv"
        lines = [f"{sale + j},1,1,1,2024-01-01,1.00,North\n" for j in range(rows_per_file)]
        sale += rows_per_file
        (inbox / name).write_text(header + "".join(lines))
    old = time.time() - 60
    for path in inbox.iterdir():
        os.utime(path, (old, old))
    began = time.perf_counter()
    luigi.build(
        [ProcessInbox(min_age_s=0, batch_size=50)],
        local_scheduler=True,
        workers=2,
        log_level="WARNING",
    )
    return (time.perf_counter() - began) / count * 1000


@benchmark("sales")
def sales_bench(args: argparse.Namespace) -> dict[str, object]:
    from demo.sales_generator import SalesSpec, write_year

    spec = SalesSpec(total_orders=args.orders, weeks=args.weeks)
    with tempfile.TemporaryDirectory(prefix="sales-bench-") as tmp:
        root = Path(tmp)
        runtime = root / "runtime"
        _isolate(runtime)
        raw = root / "raw"
        t0 = time.perf_counter()
        stats = write_year(raw, spec)
        generate_s = time.perf_counter() - t0
        files, written = stats["files"], stats["rows_written"]
        print(f"\nSales year: {files} files, {written:,} rows ({generate_s:.1f} s to generate)")
        # The flow and the floor take turns, ``--repeat`` times each (default 3), so both see
        # the same machine; the figures are their medians (one run of either varies by a third
        # here: the servers' background writes, ClickHouse's part files).
        flow_runs: list[float] = []
        floor_runs: list[float] = []
        for _ in range(max(1, args.repeat)):
            seconds, rows = _flow(raw, runtime, workers=2, spec=spec)
            flow_runs.append(seconds)
            floor_runs.append(_floor(raw))
        flow_s, floor_s = statistics.median(flow_runs), statistics.median(floor_runs)
        peak_mb = peak_rss_mb()
        line = "  {:<66} {:8.1f} s   {}"
        runs = "runs " + ", ".join(f"{s:.1f}" for s in flow_runs) + " s"
        print(
            line.format(
                "the flow: inbox, flags, PostgreSQL, aggregates, ClickHouse",
                flow_s,
                f"{rows:,} rows loaded; {runs}",
            ),
            flush=True,
        )
        print(
            line.format(
                "(a) floor: psql \\copy + aggregate SQL + one ClickHouse insert",
                floor_s,
                f"the flow takes {flow_s / floor_s:.1f}x the floor; runs "
                + ", ".join(f"{s:.1f}" for s in floor_runs)
                + " s",
            ),
            flush=True,
        )
        seed = _baseline(raw)
        seed_s = seed["seconds"]
        print(
            line.format(
                "(b) the requirement's way: row inserts, SQL aggregates, 1,000-row inserts",
                seed_s,
                f"the flow is {seed_s / flow_s:.1f}x faster",
            ),
            flush=True,
        )
        print(
            f"      {seed['weeks_timed']} of {seed['weeks_total']} weeks timed, scaled by rows:"
            f" row inserts {seed['postgres_row_inserts_s']:.1f} s"
            f" ({seed['us_per_row_insert']:.0f} us a row), aggregates"
            f" {seed['postgres_aggregate_s']:.1f} s, ClickHouse inserts"
            f" {seed['clickhouse_inserts_s']:.1f} s"
        )
        print(f"  peak memory (RSS, largest process of the run): {peak_mb:,.0f} MB")
        print("\nPer-file overhead (20-row files through ProcessInbox, 2 workers)")
        per_file: dict[str, float] = {}
        for count in args.files:
            per_file[str(count)] = round(_small_files(runtime, count), 2)
            print(f"  {count:>6,} files   {per_file[str(count)]:7.1f} ms/file", flush=True)
    return {
        "files": files,
        "rows": rows,
        "rows_written": written,
        "orders": spec.total_orders,
        "weeks": spec.weeks,
        "generate_s": round(generate_s, 3),
        "flow_s": round(flow_s, 3),
        "floor_s": round(floor_s, 3),
        "flow_runs_s": [round(x, 3) for x in flow_runs],
        "floor_runs_s": [round(x, 3) for x in floor_runs],
        "seed_style_s": round(seed_s, 3),
        "seed_style": {k: round(v, 3) for k, v in seed.items()},
        "flow_vs_floor": round(flow_s / floor_s, 2),
        "seed_style_vs_flow": round(seed_s / flow_s, 2),
        "peak_rss_mb": round(peak_mb, 1),
        "per_file_ms": per_file,
        "goals": {"flow_vs_floor_max": 3, "seed_style_vs_flow_min": 10, "per_file_ms_max": 25},
    }


@benchmark("sales-10m")
def sales_ten_million(args: argparse.Namespace) -> dict[str, object]:
    """Peak memory and time of a 10,000,000-order year through the flow (not in the default set:
    it takes minutes; `python -m benchmarks sales-10m`)."""
    from demo.sales_generator import SalesSpec, write_year

    spec = SalesSpec(total_orders=10_000_000)
    with tempfile.TemporaryDirectory(prefix="sales-10m-") as tmp:
        root = Path(tmp)
        runtime = root / "runtime"
        _isolate(runtime)
        t0 = time.perf_counter()
        stats = write_year(root / "raw", spec)
        print(
            f"\n10M year: {stats['files']} files, {stats['rows_written']:,} rows "
            f"({time.perf_counter() - t0:.1f} s to generate, peak {peak_rss_mb():,.0f} MB)"
        )
        flow_s, rows = _flow(root / "raw", runtime, workers=2, spec=spec)
        peak_mb = peak_rss_mb()
        print(f"  the flow: {flow_s:.1f} s for {rows:,} rows; peak RSS {peak_mb:,.0f} MB")
    return {
        "files": stats["files"],
        "rows": rows,
        "rows_written": stats["rows_written"],
        "orders": spec.total_orders,
        "flow_s": round(flow_s, 3),
        "peak_rss_mb": round(peak_mb, 1),
        "goals": {"peak_rss_mb_max": 1024},
    }
