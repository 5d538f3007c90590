"""The sales flow's Spark jobs: the week's aggregates (``SalesWeekly --engine spark``) and the
cleaning of a year of archived raw files into Parquet (``CleanSalesHistory``).

Both keep values exact: amounts are decimals end to end (never doubles), integers are 64-bit.
The aggregates are those of ``sql/postgres/aggregate_week.sql`` to the digit: the average and
the share are rounded half away from zero, as PostgreSQL's ``round(numeric)``, by integer
arithmetic on cents (Spark's decimal division keeps 6 places at most, and a value rounded twice
can differ in its last digit). ``tests/sales/test_spark_engine.py`` holds the two engines' tables
equal.

Imported only when a Spark path runs (pyspark takes a while to import).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipeline.inbox.contract import SALES
from pipeline.inbox.contract import Column as ContractColumn
from pipeline.sales.contract import AGG_COLUMNS
from pipeline.systems.spark import application_id, read_postgres

WEEK = dt.timedelta(weeks=1)
# Integers as wide as Spark's decimals go: cents and millionths of a year's totals fit many times.
INTEGER = "decimal(38,0)"
# The aggregate's column types, as sql/postgres/create_sales_agg.sql declares them.
AGG_TYPES = {
    "total_amount": "decimal(16,2)",
    "avg_sale_amount": "decimal(16,2)",
    "share_of_region": "decimal(9,6)",
    "prev_week_amount": "decimal(16,2)",
    "change_vs_prev_week": "decimal(16,2)",
}


@dataclass(frozen=True)
class SparkWeek:
    """A week aggregated on Spark: the rows in ``AGG_COLUMNS`` order, and which application
    computed them."""

    rows: list[tuple[Any, ...]]
    application_id: str
    master: str
    seconds: float


def week_aggregates(spark: SparkSession, week: dt.date) -> SparkWeek:
    """The week's aggregate rows, computed on Spark from ``sales.sales`` (the week and the one
    before it, read through JDBC), ordered by region and product. A week is at most regions x
    products rows: collected to the driver, they replace the week in one PostgreSQL
    transaction with its marker."""
    began = time.perf_counter()
    first, end = week - WEEK, week + WEEK
    rows = read_postgres(
        spark, "sales/spark_rows", {"start": first, "end": end}, "sale_date", first, end
    )
    frame = aggregate_weeks(rows, week, week).orderBy("region", "product_id")
    collected = [tuple(row) for row in frame.collect()]
    return SparkWeek(
        collected,
        application_id(spark),
        str(spark.sparkContext.master),
        time.perf_counter() - began,
    )


def _half_away(numerator: Column, denominator: Column) -> Column:
    """``round(numerator / denominator)`` half away from zero, exactly, as decimal(38, 0): both
    are integers (decimal(38, 0)), the denominator positive. floor((2|n| + d) / 2d) by
    subtracting the remainder first, so the one division left is exact."""
    doubled = (F.abs(numerator) * 2 + denominator).cast(INTEGER)
    twice = (denominator * 2).cast(INTEGER)
    quotient = ((doubled - doubled % twice) / twice).cast(INTEGER)
    return F.when(numerator < 0, -quotient).otherwise(quotient)


def aggregate_weeks(rows: DataFrame, first: dt.date, last: dt.date) -> DataFrame:
    """One row per week x region x product for the weeks from ``first`` to ``last`` (Mondays):
    sales count and total, the average rounded to cents, the rank in the region by total
    (descending, then product), the share of the region's total rounded to 6 places, the
    previous week's total and the change (NULL when the product sold nothing that week).

    ``rows``: ``region, product_id, sale_date, sale_amount`` from ``first`` minus a week (for
    the previous weeks) to ``last`` plus a week."""
    sales = rows.withColumn("week_start", F.date_trunc("week", F.col("sale_date")).cast("date"))
    keys = ["week_start", "region", "product_id"]
    current = (
        sales.where(F.col("week_start").between(F.lit(first), F.lit(last)))
        .groupBy(*keys)
        .agg(F.count(F.lit(1)).alias("sales_count"), F.sum("sale_amount").alias("total_amount"))
    )
    previous = (
        sales.withColumn("week_start", F.date_add("week_start", 7))
        .groupBy(*keys)
        .agg(F.sum("sale_amount").alias("prev_week_amount"))
    )
    region = Window.partitionBy("week_start", "region")
    order = Window.partitionBy("week_start", "region").orderBy(
        F.col("total_amount").desc(), F.col("product_id").asc()
    )
    cents = (F.col("total_amount") * 100).cast(INTEGER)
    joined = (
        current.join(previous, keys, "left")
        .withColumn("total_cents", cents)
        .withColumn("region_cents", F.sum("total_cents").over(region).cast(INTEGER))
        .withColumn(
            "avg_cents", _half_away(F.col("total_cents"), F.col("sales_count").cast(INTEGER))
        )
        .withColumn(
            "share_micros",
            _half_away((F.col("total_cents") * 1_000_000).cast(INTEGER), F.col("region_cents")),
        )
    )
    out = {
        "week_start": F.col("week_start"),
        "region": F.col("region"),
        "product_id": F.col("product_id").cast("bigint"),
        "sales_count": F.col("sales_count").cast("bigint"),
        "total_amount": F.col("total_amount"),
        # Integers times an exact decimal literal: no division, no rounding.
        "avg_sale_amount": F.col("avg_cents") * F.lit(Decimal("0.01")),
        "rank_in_region": F.rank().over(order).cast("int"),
        "share_of_region": F.col("share_micros") * F.lit(Decimal("0.000001")),
        "prev_week_amount": F.col("prev_week_amount"),
        "change_vs_prev_week": F.col("total_amount") - F.col("prev_week_amount"),
    }
    assert tuple(out) == AGG_COLUMNS, "the Spark engine's columns drifted from AGG_COLUMNS"
    return joined.select(
        *[
            (expr.cast(AGG_TYPES[name]) if name in AGG_TYPES else expr).alias(name)
            for name, expr in out.items()
        ]
    )


# --- the history job: archived raw files -> clean Parquet ---------------------------------------

# The Parquet dataset's columns: those of sales.sales (the contract's, then the file id).
HISTORY_COLUMNS = (*SALES.names, "file_id")
_INT = r"^[+-]?[0-9]+$"
_DECIMAL = r"^[+-]?[0-9]+(\.[0-9]+)?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_SPARK_TYPES = {"int": "bigint", "date": "date", "str": "string"}


@dataclass(frozen=True)
class HistoryCounts:
    files: int
    rows_read: int
    rejected: int
    duplicates: int
    written: int
    application_id: str
    seconds: float


def _typed(column: ContractColumn, text: Column) -> tuple[Column, Column]:
    """A raw text column as the contract's type, and the first rule it breaks (NULL: none), the
    rules of the inbox's validation (``pipeline/inbox/validate.py``)."""
    rules: list[tuple[Column, str]] = []
    empty = text.isNull() | (text == "")
    if not column.nullable:
        rules.append((empty, "not_null"))
    rules.append((F.length(text) > column.max_length, f"max_length {column.max_length}"))
    if column.type == "decimal":
        rules.append((~text.rlike(_DECIMAL), "type: decimal"))
        # A cast to the column's scale rounds half away from zero (the contract's half_up); a
        # value beyond its precision comes back NULL.
        typed = text.try_cast(f"decimal({column.precision},{column.scale})")
        if column.rounding == "reject":
            wide = text.try_cast(f"decimal(38,{min(38, column.scale + 18)})")
            rules.append((typed != wide, f"scale: more than {column.scale} decimal places"))
        rules.append((typed.isNull(), f"range: numeric({column.precision}, {column.scale})"))
    elif column.type == "int":
        rules.append((~text.rlike(_INT), "type: integer"))
        typed = text.try_cast("bigint")
        rules.append((typed.isNull(), "range: int64"))
    elif column.type == "date":
        rules.append((~text.rlike(_DATE), "type: date (YYYY-MM-DD)"))
        typed = F.try_to_timestamp(text, F.lit("yyyy-MM-dd")).cast("date")
        rules.append((typed.isNull(), "type: date (no such day)"))
    else:
        typed = text
        if column.allowed is not None:
            allowed = sorted(column.allowed)
            rules.append((~text.isin(allowed), f"allowed: {', '.join(allowed)}"))
    if column.min is not None:
        rules.append((typed < F.lit(column.min), f"min {column.min}"))
    if column.max is not None:
        rules.append((typed > F.lit(column.max), f"max {column.max}"))
    broken: Column = F.lit(None).cast("string")
    for condition, rule in reversed(rules):  # the first rule that breaks wins
        broken = F.when(condition, F.lit(f"{column.name}: {rule}")).otherwise(broken)
    if column.nullable:
        broken = F.when(empty, F.lit(None).cast("string")).otherwise(broken)
    return typed, broken


def clean_history(
    spark: SparkSession, files: list[Path], clean: Path, rejects: Path
) -> HistoryCounts:
    """Archived raw weekly files (gzip CSV) -> one row per ``sale_id`` (the first occurrence in
    archive order wins: files are append-only extracts, a repeated id is a re-sent row), typed
    as the contract says (amounts decimal(14, 2), dates, 64-bit integers), as Parquet under
    ``clean``; rows that break a rule go to ``rejects`` with the file, the rule and the raw
    values, so nothing is lost."""
    began = time.perf_counter()
    raw_schema = T.StructType(
        [T.StructField(name, T.StringType()) for name in SALES.names]
        + [T.StructField("_corrupt_record", T.StringType())]
    )
    raw = (
        spark.read.option("header", "true")
        .option("enforceSchema", "false")  # a file whose header differs fails, named
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt_record")
        .option("encoding", SALES.encoding)
        .option("sep", SALES.delimiter)
        .schema(raw_schema)
        .csv([str(path) for path in files])
        .withColumn("source", F.input_file_name())
        # Rows of one gzip file stay in one partition, in order: (source, row) is file order.
        .withColumn("row", F.monotonically_increasing_id())
        .withColumn(
            "file_id",
            F.regexp_extract(F.element_at(F.split("source", "/"), -1), r"^(.+?)__", 1),
        )
    )
    typed_columns: dict[str, Column] = {}
    broken: Column = F.when(
        F.col("_corrupt_record").isNotNull(), F.lit("row: wrong number of fields")
    )
    for column in SALES.columns:
        typed, rule = _typed(column, F.trim(F.col(column.name)))
        typed_columns[column.name] = typed.cast(
            f"decimal({column.precision},{column.scale})"
            if column.type == "decimal"
            else _SPARK_TYPES[column.type]
        )
        broken = F.coalesce(broken, rule)
    checked = raw.withColumn("rule", broken).persist()
    try:
        rows_read = checked.count()
        bad = checked.where(F.col("rule").isNotNull())
        bad.select("source", "row", "rule", *SALES.names).write.mode("overwrite").parquet(
            str(rejects)
        )
        rejected = spark.read.parquet(str(rejects)).count()
        first = Window.partitionBy("sale_id").orderBy("source", "row")
        good = (
            checked.where(F.col("rule").isNull())
            .select(
                *[typed_columns[name].alias(name) for name in SALES.names],
                "file_id",
                "source",
                "row",
            )
            .withColumn("_first", F.row_number().over(first))
            .where(F.col("_first") == 1)
            .select(*HISTORY_COLUMNS)
            .sortWithinPartitions("sale_id")
        )
        good.write.mode("overwrite").parquet(str(clean))
    finally:
        checked.unpersist()
    written = spark.read.parquet(str(clean)).count()
    return HistoryCounts(
        files=len(files),
        rows_read=rows_read,
        rejected=rejected,
        duplicates=rows_read - rejected - written,
        written=written,
        application_id=application_id(spark),
        seconds=time.perf_counter() - began,
    )
