"""The Spark engine of the weekly sales flow gives the PostgreSQL engine's tables, to the digit
(decimals, ties rounded half away from zero, NULL previous weeks), in PostgreSQL and ClickHouse,
and both are the rows ``pipeline.sales.transform`` defines, computed from the files; the week's
summary names the Spark application. Spark runs in-process (``local[*]``): one driver
for the whole test session, small data."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from decimal import Decimal
from pathlib import Path

import luigi
import pytest

from demo.sales_generator import SalesSpec, file_name, write_year
from pipeline.inbox.chain import Inbox
from pipeline.sales.tasks import (
    SalesAggregates,
    SalesAggregatesToClickHouse,
    SalesBackfill,
    SalesWeekly,
)
from pipeline.systems.clickhouse import ClickHouse
from pipeline.systems.postgres import ensure_marker_table, transaction
from tests.fixtures.periods import forget
from tests.sales.test_sales_flow import expected

pytestmark = pytest.mark.integration

SPEC = SalesSpec(total_orders=4_000, weeks=3, products=20, missing_weeks=(2,), seed=5)
# A fourth week written by hand: ties at the last digit of the average and of the share.
EDGE_WEEK = SPEC.week_start(4)
WEEKS = [SPEC.week_start(w) for w in range(1, 5)]
HEADER = "sale_id,customer_id,product_id,quantity,sale_date,sale_amount,region\n"


def edge_files(raw: Path) -> None:
    sunday = EDGE_WEEK + dt.timedelta(days=6)
    north = [
        # Product 901: 0.01 + 0.02 -> average 0.015 -> 0.02; share 3 / 2,000,000 cents ->
        # 0.0000015 -> 0.000002. Product 902: 19,999.97 -> share 0.9999985 -> 0.999999.
        f"90000001,1,901,1,{EDGE_WEEK},0.01,North",
        f"90000002,2,901,1,{sunday},0.02,North",
        f"90000003,3,902,1,{EDGE_WEEK},19000.00,North",
        f"90000004,4,902,1,{sunday},999.97,North",
    ]
    # Product 7 sold in the week before too: its previous amount and change are not NULL.
    south = [f"90000005,5,7,3,{EDGE_WEEK + dt.timedelta(days=2)},5.55,South"]
    for region, rows in (("North", north), ("South", south)):
        (raw / file_name(EDGE_WEEK, region)).write_text(HEADER + "\n".join(rows) + "\n")


@pytest.fixture
def landed(inbox: Inbox, tmp_path: Path) -> Path:
    forget("sales")  # what the weeks were computed from and the messages sent: a fresh start
    with transaction() as cur:
        ensure_marker_table(cur)
        cur.execute("DROP TABLE IF EXISTS sales.sales_agg")
        cur.execute("DELETE FROM ops.load_markers WHERE target_table = 'sales.sales_agg'")
    ch = ClickHouse()
    ch.execute("sales/create_sales_agg")
    for week in WEEKS:
        ch.execute("sales/drop_week", partition=int(f"{week:%Y%m%d}"))
    raw = tmp_path / "raw"
    write_year(raw, SPEC)
    edge_files(raw)
    old = time.time() - 60
    for path in raw.iterdir():
        target = inbox.paths.inbox / path.name
        target.write_bytes(path.read_bytes())
        os.utime(target, (old, old))
    return raw


def pg_table() -> list[tuple]:
    with transaction() as cur:
        cur.execute(
            "SELECT week_start, region, product_id, sales_count, total_amount, avg_sale_amount,"
            " rank_in_region, share_of_region, prev_week_amount, change_vs_prev_week"
            " FROM sales.sales_agg ORDER BY 1, 2, 3"
        )
        return cur.fetchall()


def ch_table() -> list[list]:
    return [
        list(row.values())
        for week in WEEKS
        for row in ClickHouse().query("sales/week_rows", week=week)
    ]


def summaries(inbox: Inbox) -> list[str]:
    return [
        json.loads(p.read_text())["text"]
        for p in sorted(inbox.paths.outbox.glob("*-summary-*.json"))
    ]


def test_spark_and_postgres_engines_give_identical_tables(inbox: Inbox, landed: Path) -> None:
    assert luigi.build(
        [SalesBackfill(start=WEEKS[0], end=WEEKS[-1], engine="spark")],
        local_scheduler=True,
        workers=1,
        log_level="WARNING",
    )
    on_spark = (pg_table(), ch_table())
    sent = summaries(inbox)
    assert len(sent) == 1, sent  # one for the backfill's weeks
    assert "aggregated on Spark, application local-" in sent[0], sent

    # The same weeks again on PostgreSQL, replacing Spark's rows in both databases.
    for week in WEEKS:
        SalesAggregates(week=week, engine="postgres").run()
        SalesAggregatesToClickHouse(week=week, engine="postgres").run()
    on_postgres = (pg_table(), ch_table())
    assert on_spark == on_postgres
    # Both are the flow's definition of a week's rows, computed independently from the files.
    assert on_postgres[0] == list(expected(landed).itertuples(index=False, name=None))

    rows = {(r[0], r[1], r[2]): r for r in on_postgres[0]}
    assert len(rows) > 100
    # The first week has no week before it: every previous amount and change is NULL.
    assert all(r[8] is None and r[9] is None for r in on_postgres[0] if r[0] == WEEKS[0])
    assert any(r[8] is not None for r in on_postgres[0] if r[0] == WEEKS[1])
    tie = rows[(EDGE_WEEK, "North", 901)]
    assert (tie[3], tie[4], tie[5], tie[7]) == (
        2,
        Decimal("0.03"),
        Decimal("0.02"),
        Decimal("0.000002"),
    )
    assert rows[(EDGE_WEEK, "North", 902)][6:8] == (1, Decimal("0.999999"))
    repeat = rows[(EDGE_WEEK, "South", 7)]
    assert repeat[8] is not None and repeat[9] == Decimal("5.55") - repeat[8]


def test_the_engine_is_a_setting_and_not_part_of_the_task_identity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    week = dt.date(2024, 1, 15)
    assert SalesWeekly(week=week).engine == "postgres"
    assert SalesWeekly(week=week, engine="spark").task_id == SalesWeekly(week=week).task_id
    with pytest.raises(ValueError):
        SalesWeekly(week=week, engine="pandas")
