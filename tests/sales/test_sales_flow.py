"""The weekly sales flow on the real servers, checked against an independent computation from
the raw files; a missing region warns and the flow goes on; reruns change nothing; failures
notify and exit non-zero."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import luigi
import pandas as pd
import pytest

from demo.sales_generator import SalesSpec, write_year
from pipeline.inbox.chain import Inbox
from pipeline.sales.tasks import SalesBackfill, SalesWeekly
from pipeline.sales.transform import aggregate_weeks
from pipeline.systems.clickhouse import ClickHouse
from pipeline.systems.postgres import ensure_marker_table, transaction
from tests.fixtures.periods import forget

pytestmark = pytest.mark.integration

SPEC = SalesSpec(total_orders=12_000, weeks=4, products=40, missing_weeks=(3,), seed=11)
WEEKS = [SPEC.week_start(w) for w in range(1, 5)]


def expected(raw: Path) -> pd.DataFrame:
    """The aggregates computed independently of both engines, in pandas, from the delivered
    files: the flow's definition of a week's row (``pipeline.sales.transform``)."""
    frame = pd.concat(pd.read_csv(p) for p in sorted(raw.iterdir()))
    frame = frame.drop_duplicates("sale_id")
    frame["sale_date"] = pd.to_datetime(frame["sale_date"]).dt.date
    frame["sale_amount"] = frame["sale_amount"].map(lambda v: Decimal(f"{v:.2f}"))
    return aggregate_weeks(frame)


@pytest.fixture
def landed(inbox: Inbox, tmp_path: Path) -> Path:
    forget("sales")
    with transaction() as cur:
        ensure_marker_table(cur)
        cur.execute("DROP TABLE IF EXISTS sales.sales_agg")
        cur.execute("DELETE FROM ops.load_markers WHERE target_table = 'sales.sales_agg'")
    ClickHouse().execute("sales/create_sales_agg")
    for week in WEEKS:
        ClickHouse().execute("sales/drop_week", partition=int(f"{week:%Y%m%d}"))
    raw = tmp_path / "raw"
    write_year(raw, SPEC)
    for path in raw.iterdir():
        target = inbox.paths.inbox / path.name
        target.write_bytes(path.read_bytes())
    import os
    import time

    old = time.time() - 60
    for path in inbox.paths.inbox.iterdir():
        os.utime(path, (old, old))
    return raw


def outbox(inbox: Inbox, kind: str) -> list[str]:
    return [
        json.loads(p.read_text())["text"]
        for p in sorted(inbox.paths.outbox.glob(f"*-{kind}-*.json"))
    ]


def pg_agg() -> list[tuple]:
    with transaction() as cur:
        cur.execute(
            "SELECT week_start, region, product_id, sales_count, total_amount, rank_in_region,"
            " share_of_region FROM sales.sales_agg ORDER BY 1, 2, 3"
        )
        return cur.fetchall()


def ch_agg() -> dict[tuple, tuple]:
    out = {}
    for week in WEEKS:
        for r in ClickHouse().query("sales/week_summary", week=week):
            out[(week, r["region"])] = (int(r["sales"]), round(float(r["amount"]), 2))
    return out


def test_the_weeks_end_to_end_match_an_independent_computation(inbox: Inbox, landed: Path) -> None:
    assert luigi.build(
        [SalesBackfill(start=WEEKS[0], end=WEEKS[-1])],
        local_scheduler=True,
        workers=2,
        log_level="WARNING",
    )
    want = expected(landed)
    got = pg_agg()
    assert len(got) == len(want)
    by_key = {(r[0], r[1], r[2]): r for r in got}
    for row in want.itertuples():
        week, region, product = row.week_start, row.region, row.product_id
        pg = by_key[(week, region, product)]
        assert (pg[3], pg[4], pg[5], pg[6]) == (
            row.sales_count,
            row.total_amount,
            row.rank_in_region,
            row.share_of_region,
        )
    # ClickHouse holds the same totals, with the import date.
    totals = want.groupby(["week_start", "region"]).agg(
        n=("sales_count", "sum"), a=("total_amount", "sum")
    )
    assert ch_agg() == {(w, r): (int(t.n), round(float(t.a), 2)) for (w, r), t in totals.iterrows()}
    warnings = outbox(inbox, "warning")
    assert (
        len(warnings) == 1 and f"sales week {WEEKS[2]}: no files for region(s) East" in warnings[0]
    )
    # One summary for the backfill's weeks, not one per week.
    sent = outbox(inbox, "summary")
    assert len(sent) == 1 and f"sales weeks {WEEKS[0]} to {WEEKS[-1]}: 4 week(s)" in sent[0]

    # A rerun changes nothing, and forced reruns replace the weeks exactly.
    before = (pg_agg(), ch_agg())
    assert luigi.build(
        [SalesBackfill(start=WEEKS[0], end=WEEKS[-1])], local_scheduler=True, log_level="WARNING"
    )
    from pipeline.sales.tasks import SalesAggregates, SalesAggregatesToClickHouse

    SalesAggregates(week=WEEKS[1]).run()
    SalesAggregatesToClickHouse(week=WEEKS[1]).run()
    assert (pg_agg(), ch_agg()) == before


def test_a_week_with_no_files_fails_notifies_and_exits_non_zero(inbox: Inbox, landed: Path) -> None:
    empty_week = WEEKS[-1] + dt.timedelta(weeks=10)
    result = luigi.build(
        [SalesWeekly(week=empty_week)],
        local_scheduler=True,
        detailed_summary=True,
        log_level="WARNING",
    )
    assert result.status.name == "FAILED"
    failures = outbox(inbox, "failure")
    assert (
        failures
        and "SalesAggregates" in failures[-1]
        and "no files loaded for any region" in failures[-1]
    )


def test_weeks_start_on_mondays() -> None:
    with pytest.raises(ValueError, match="starts on a Monday"):
        SalesWeekly(week=dt.date(2024, 1, 16))


def test_a_backfill_runs_each_week_s_tasks_with_no_wrapper_per_week() -> None:
    """Luigi forks a process per task it runs: a SalesWeekly per week would cost one for
    nothing, and a summary task per week one more (and 52 messages for a year). The backfill
    requires each week's ClickHouse copy itself and one summary for the range, with the same
    force token for every week."""
    start, end = dt.date(2024, 1, 1), dt.date(2024, 1, 22)
    backfill = SalesBackfill(start=start, end=end, force=True)
    required = backfill.requires()
    assert not any(isinstance(task, SalesWeekly) for task in required)
    copies = [t for t in required if t.get_task_family() == "sales.SalesAggregatesToClickHouse"]
    assert [t.week for t in copies] == [start + dt.timedelta(weeks=i) for i in range(4)]
    summaries = [t for t in required if t.get_task_family() == "sales.SalesRangeSummary"]
    assert len(summaries) == 1 and len(required) == 5
    assert {t.task_id for t in copies} == {t.task_id for t in summaries[0].requires()}
    assert {task.forced for task in required} == {backfill.force_token} != {""}
