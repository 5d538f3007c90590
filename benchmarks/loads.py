"""The shared load paths against the seed-style baselines, on the same rows in the same run."""

from __future__ import annotations

import argparse
import datetime as dt
import io

from benchmarks.common import benchmark, report, timed
from pipeline.clickhouse import ClickHouse, csv_chunks
from pipeline.postgres import copy_csv, rows_to_csv, transaction
from pipeline.smoke import COLUMNS, generate_rows

TABLE = "ops.bench_events"


def _reset() -> None:
    with transaction() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cur.execute(
            f"CREATE TABLE {TABLE} (event_id bigint, event_date date, category text,"
            " amount numeric(12, 2))"
        )


@benchmark("postgres-load")
def postgres_load(args: argparse.Namespace) -> None:
    rows = generate_rows(dt.date(2024, 1, 1), args.rows)
    baseline_rows = rows[: max(1, args.rows // 20)]

    def copy() -> None:
        _reset()
        with transaction() as cur:
            copy_csv(cur, TABLE, COLUMNS, rows_to_csv(COLUMNS, rows))

    def executemany() -> None:
        _reset()
        with transaction() as cur:
            cur.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s, %s, %s)", baseline_rows)

    copy_s = timed(copy)
    many_s = timed(executemany) * (len(rows) / len(baseline_rows))
    report(
        f"PostgreSQL load of {len(rows):,} rows",
        {
            "executemany (seed style; timed on 1/20, scaled)": many_s,
            "pipeline.postgres.copy_csv (COPY)": copy_s,
        },
        "executemany (seed style; timed on 1/20, scaled)",
    )


@benchmark("clickhouse-load")
def clickhouse_load(args: argparse.Namespace) -> None:
    ch = ClickHouse()
    ch.execute("stack/create_database", database=ch.settings.database("ops"))
    day = dt.date(2024, 1, 1)
    rows = [
        (day, f"c{i % 1000}", 1, float(i % 97), dt.datetime(2024, 1, 2)) for i in range(args.rows)
    ]

    def reset() -> None:
        ch.execute("smoke/create_daily")
        ch.execute("smoke/drop_day", partition=20240101)

    def bulk() -> None:
        reset()
        ch.insert("smoke/insert_daily", csv_chunks(rows))

    def chunked() -> None:
        reset()
        for start in range(0, len(rows), 1000):
            ch.insert(
                "smoke/insert_daily", io.BytesIO(b"".join(csv_chunks(rows[start : start + 1000])))
            )

    report(
        f"ClickHouse insert of {len(rows):,} rows",
        {
            "1,000-row chunks (seed style)": timed(chunked),
            "pipeline.clickhouse insert (streamed CSV)": timed(bulk),
        },
        "1,000-row chunks (seed style)",
    )
