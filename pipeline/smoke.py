"""The foundation's end-to-end proof: a CSV file in, a PostgreSQL table and a ClickHouse table out.

``make demo`` runs it until the real flows replace it. It uses the same pieces the flows use:
a file in the inbox, ``COPY`` into PostgreSQL with a load marker in the same transaction, the
aggregation pushed down into PostgreSQL, and a day-partition replace in ClickHouse.

Run it with Luigi::

    luigi --module pipeline.smoke SmokeDemo --day 2024-01-01

after putting a file in the inbox (``python -m pipeline.smoke generate --day 2024-01-01``).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
from pathlib import Path

import luigi

from config.settings import load_settings
from pipeline.clickhouse import ClickHouse, ClickHouseMarkerTarget, csv_chunks
from pipeline.postgres import (
    PostgresMarkerTarget,
    copy_csv,
    ensure_marker_table,
    transaction,
    write_marker,
)
from pipeline.tasks import PipelineTask

CATEGORIES = ("alpha", "beta", "gamma", "delta")
COLUMNS = ("event_id", "event_date", "category", "amount")
PG_TABLE = "ops.smoke_events"


def smoke_file(day: dt.date) -> Path:
    return load_settings().paths.inbox / "smoke" / f"smoke_{day:%Y%m%d}.csv"


def generate_rows(day: dt.date, rows: int, seed: int = 7) -> list[tuple[int, str, str, float]]:
    """Deterministic demo events for ``day``: ``rows`` rows over four categories."""
    rng = random.Random(f"{seed}-{day.isoformat()}")
    return [
        (i + 1, day.isoformat(), rng.choice(CATEGORIES), round(rng.uniform(1, 100), 2))
        for i in range(rows)
    ]


def write_smoke_file(day: dt.date, rows: int = 1000, seed: int = 7) -> Path:
    """Write the day's file into the inbox atomically (a reader never sees half a file)."""
    path = smoke_file(day)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(generate_rows(day, rows, seed))
    tmp.replace(path)
    return path


class SmokeFile(luigi.ExternalTask):
    """The day's demo file, landed in the inbox by someone else."""

    day = luigi.DateParameter()

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(smoke_file(self.day)))


class SmokeEventsToPostgres(PipelineTask):
    """The day's events in ``ops.smoke_events``; the day's rows replaced, marker in the same
    transaction, so a rerun never doubles rows."""

    day = luigi.DateParameter()

    def requires(self) -> SmokeFile:
        return SmokeFile(day=self.day)

    def output(self) -> PostgresMarkerTarget:
        return PostgresMarkerTarget(PG_TABLE, f"smoke:{self.day.isoformat()}")

    def run(self) -> None:
        with transaction() as cur:
            ensure_marker_table(cur)
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {PG_TABLE} ("
                " event_date date NOT NULL, event_id bigint NOT NULL,"
                " category text NOT NULL, amount numeric(12, 2) NOT NULL,"
                " PRIMARY KEY (event_date, event_id))"
            )
            cur.execute(f"DELETE FROM {PG_TABLE} WHERE event_date = %s", (self.day,))
            with self.input().open("r") as handle:
                rows = copy_csv(cur, PG_TABLE, COLUMNS, handle)
            write_marker(cur, PG_TABLE, self.output().update_id, rows)
        self.progress(f"copied {rows} rows into {PG_TABLE}", 100)


class SmokeDailyToClickHouse(PipelineTask):
    """One row per day per category in ClickHouse ``ops.smoke_daily``, aggregated in PostgreSQL.

    The day's partition is dropped before the insert, so a rerun replaces the day exactly."""

    day = luigi.DateParameter()

    def requires(self) -> SmokeEventsToPostgres:
        return SmokeEventsToPostgres(day=self.day)

    def output(self) -> ClickHouseMarkerTarget:
        return ClickHouseMarkerTarget("smoke_daily", self.day.isoformat())

    def run(self) -> None:
        with transaction() as cur:
            cur.execute(
                f"SELECT event_date, category, count(*), sum(amount)::float8, now()::timestamp(0)"
                f" FROM {PG_TABLE} WHERE event_date = %s GROUP BY 1, 2 ORDER BY 2",
                (self.day,),
            )
            rows = cur.fetchall()
        ch = ClickHouse()
        ch.execute("smoke/create_daily")
        ch.execute("smoke/drop_day", partition=int(f"{self.day:%Y%m%d}"))
        ch.insert("smoke/insert_daily", csv_chunks(rows))
        self.output().touch(len(rows))


class SmokeDemo(luigi.WrapperTask):
    """The whole smoke flow for one day."""

    day = luigi.DateParameter(default=dt.date.today() - dt.timedelta(days=1))

    def requires(self) -> SmokeDailyToClickHouse:
        return SmokeDailyToClickHouse(day=self.day)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Land a demo file in the inbox.")
    parser.add_argument("action", choices=["generate"])
    parser.add_argument("--day", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args(argv)
    print(write_smoke_file(args.day, args.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
