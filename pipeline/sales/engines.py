"""The two engines of the weekly aggregates: PostgreSQL (``sql/postgres/aggregate_week.sql``, in
the database) and Spark (``spark.py``, on ``PIPELINE_SPARK_MASTER``). Either way the week's rows
replace the old ones in one PostgreSQL transaction with the marker, and ClickHouse copies them
from there, so the tables are the same (``tests/sales/test_spark_engine.py``).

Which engine computed a week, and Spark's application id, is recorded beside the week's work
files (``<runtime>/sales/<week>/aggregates.json``) for the week's summary line.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import luigi

from config.settings import SALES_ENGINES, load_settings
from pipeline.core.files import atomic_write
from pipeline.core.workfiles import day_target
from pipeline.sales.contract import AGG_COLUMNS
from pipeline.systems import postgres
from pipeline.systems.postgres import copy_csv, rows_to_csv

if TYPE_CHECKING:
    import psycopg2.extensions

    from pipeline.sales.spark import SparkWeek


def engine_parameter() -> luigi.ChoiceParameter:
    """Where the week's aggregates are computed; not part of the task's identity (the table is
    the same either way, so a week done by one engine is done)."""
    return luigi.ChoiceParameter(
        choices=SALES_ENGINES,
        default=load_settings().flows.sales_engine,
        significant=False,
        description="Where the aggregates are computed: postgres (SQL in the database) or spark "
        "(PIPELINE_SPARK_MASTER: local[*] or a spark:// cluster); the same table either way. "
        "Default: PIPELINE_SALES_ENGINE (postgres).",
    )


def aggregate_on_spark(week: dt.date) -> SparkWeek:
    """The week's aggregate rows computed on Spark (pipeline/sales/spark.py), before the
    PostgreSQL transaction that stores them opens: no transaction waits on a Spark job."""
    from pipeline.sales.spark import week_aggregates
    from pipeline.systems.spark import job_timeout, session

    spark = session()
    with job_timeout(spark, f"sales week {week}", load_settings().flows.task_timeout_s):
        return week_aggregates(spark, week)


def insert_week(cur: psycopg2.extensions.cursor, week: dt.date, computed: SparkWeek | None) -> int:
    """The week's aggregate rows into ``sales.sales_agg`` (its old rows deleted just before, in
    the same transaction): computed by PostgreSQL, or Spark's rows copied in."""
    if computed is None:
        postgres.run(cur, "sales/aggregate_week", {"week": week})
        return int(cur.rowcount)
    return copy_csv(cur, "sales.sales_agg", AGG_COLUMNS, rows_to_csv(AGG_COLUMNS, computed.rows))


def record_engine(week: dt.date, engine: str, computed: SparkWeek | None) -> str:
    """Which engine computed the week (and Spark's application id), kept beside the week's work
    files for the summary, which may run in another worker process; returns it as a phrase."""
    record: dict[str, Any] = {"engine": engine}
    if computed is not None:
        record.update(application_id=computed.application_id, master=computed.master)
        record["seconds"] = round(computed.seconds, 3)
    atomic_write(day_target("sales", week, "aggregates.json").path, json.dumps(record))
    return engine_phrase(record)


def engine_phrase(record: dict[str, Any]) -> str:
    if record.get("application_id"):
        return f"on Spark, application {record['application_id']} ({record.get('master')})"
    return f"on {record.get('engine', 'postgres')}"


def computed_by(week: dt.date) -> str:
    """What the week's summary adds, from its record: `` (aggregated on Spark, application
    local-…)``; nothing when there is no record."""
    path = day_target("sales", week, "aggregates.json").path
    try:
        with open(path, encoding="utf-8") as handle:
            return f" (aggregated {engine_phrase(json.load(handle))})"
    except (OSError, ValueError):
        return ""
