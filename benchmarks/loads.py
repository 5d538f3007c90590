"""The shared load paths against the seed-style baselines, on the same rows in the same run."""

from __future__ import annotations

import argparse
import datetime as dt
import io

from psycopg2 import sql

from benchmarks.common import benchmark, report, timed
from pipeline.systems import postgres
from pipeline.systems.clickhouse import ClickHouse, csv_chunks
from pipeline.systems.postgres import copy_csv, rows_to_csv, transaction

TABLE = "ops.bench_events"
COLUMNS = ["event_id", "event_date", "category", "amount"]


def generate_rows(day: dt.date, count: int) -> list[tuple[int, dt.date, str, str]]:
    """Rows shaped like a small event file: an id, a date, a category, a money amount."""
    categories = ("view", "click", "purchase", "refund")
    return [(i, day, categories[i % 4], f"{(i * 7919) % 100_000 / 100:.2f}") for i in range(count)]


def _reset() -> None:
    with transaction() as cur:
        postgres.run(cur, "benchmarks/reset_events", table=TABLE)


@benchmark("postgres-load")
def postgres_load(args: argparse.Namespace) -> None:
    rows = generate_rows(dt.date(2024, 1, 1), args.rows)
    baseline_rows = rows[: max(1, args.rows // 20)]

    def copy() -> None:
        _reset()
        with transaction() as cur:
            copy_csv(cur, TABLE, COLUMNS, rows_to_csv(COLUMNS, rows))

    # The seed-style baseline being measured: one INSERT per row.
    insert = sql.SQL("INSERT INTO {} VALUES (%s, %s, %s, %s)").format(postgres.identifier(TABLE))

    def executemany() -> None:
        _reset()
        with transaction() as cur:
            cur.executemany(insert, baseline_rows)

    copy_s = timed(copy)
    many_s = timed(executemany) * (len(rows) / len(baseline_rows))
    report(
        f"PostgreSQL load of {len(rows):,} rows",
        {
            "executemany (seed style; timed on 1/20, scaled)": many_s,
            "pipeline.systems.postgres.copy_csv (COPY)": copy_s,
        },
        "executemany (seed style; timed on 1/20, scaled)",
    )


@benchmark("clickhouse-load")
def clickhouse_load(args: argparse.Namespace) -> None:
    ch = ClickHouse()
    ch.execute("stack/create_database", database=ch.settings.database("ops"))
    ch.execute("stack/create_database", database=ch.settings.database("sales"))
    week, imported = dt.date(2024, 1, 1), dt.datetime(2024, 1, 2)
    # Rows of the weekly sales aggregate (sales.sales_agg), one per region x product.
    rows = [
        (week, "North", i, 3, "29.97", "9.99", 1, "0.001", None, None, imported.date(), imported)
        for i in range(args.rows)
    ]

    def reset() -> None:
        ch.execute("sales/create_sales_agg")
        ch.execute("sales/drop_week", partition=20240101)

    def bulk() -> None:
        reset()
        ch.insert("sales/insert_sales_agg", csv_chunks(rows))

    def chunked() -> None:
        reset()
        for start in range(0, len(rows), 1000):
            chunk = io.BytesIO(b"".join(csv_chunks(rows[start : start + 1000])))
            ch.insert("sales/insert_sales_agg", chunk)

    report(
        f"ClickHouse insert of {len(rows):,} rows",
        {
            "1,000-row chunks (seed style)": timed(chunked),
            "pipeline.systems.clickhouse insert (streamed CSV)": timed(bulk),
        },
        "1,000-row chunks (seed style)",
    )
