"""The weekly sales flow as the issue "every message once, late data included" asks, on the real
servers: a late region file is aggregated by the next run in PostgreSQL and ClickHouse (the
week after it too) and the summary says what changed; a run killed at each boundary and rerun
gives the exact week and no more messages than the policy allows; --force replaces, never
doubles; a flushed Redis sends nothing new; a held lock fails the week fast and clearly."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from decimal import Decimal
from pathlib import Path

import luigi
import pytest
from luigi.task_register import Register

from demo.sales_generator import SalesSpec, file_name, write_year
from pipeline.inbox.chain import Inbox
from pipeline.sales.tasks import SalesBackfill, SalesWeekly
from pipeline.systems import postgres
from pipeline.systems.clickhouse import ClickHouse
from pipeline.systems.postgres import ensure_marker_table, transaction
from pipeline.systems.redis import connect
from tests.fixtures.periods import forget, killed_at, ledger, outbox
from tests.sales.test_sales_flow import expected

pytestmark = pytest.mark.integration

SPEC = SalesSpec(
    total_orders=9_000, weeks=8, products=25, missing_region=None, missing_weeks=(), seed=31
)
WEEKS = [SPEC.week_start(w) for w in range(1, 9)]
# The East files of weeks 2-7 arrive late, one per kill point.
POINTS = [
    "sales.before_commit",
    "sales.after_commit",
    "replace.before_swap",
    "replace.after_swap",
    "notify.before_send",
    "notify.after_send",
]
LATE = {point: file_name(WEEKS[i + 1], "East") for i, point in enumerate(POINTS)}


@pytest.fixture
def delivered(inbox: Inbox, tmp_path: Path) -> Path:
    """Every file of eight weeks delivered but the late East ones; the folder of what was
    delivered so far (the independent computation reads it)."""
    forget("sales")
    with transaction() as cur:
        ensure_marker_table(cur)
        cur.execute("DROP TABLE IF EXISTS sales.sales_agg")
    ch = ClickHouse()
    ch.execute("sales/create_sales_agg")
    for week in WEEKS:
        ch.execute("sales/drop_week", partition=int(f"{week:%Y%m%d}"))
    every = tmp_path / "every"
    write_year(every, SPEC)
    done = tmp_path / "delivered"
    done.mkdir()
    for path in sorted(every.iterdir()):
        if path.name not in LATE.values():
            deliver(path, inbox, done)
    return every


def deliver(path: Path, inbox: Inbox, done: Path) -> None:
    shutil.copy(path, done / path.name)
    target = inbox.paths.inbox / path.name
    target.write_bytes(path.read_bytes())
    old = time.time() - 60
    os.utime(target, (old, old))


def build(*tasks: luigi.Task) -> bool:
    return luigi.build(list(tasks), local_scheduler=True, log_level="WARNING")


def pg_week(week: dt.date) -> list[tuple]:
    with transaction() as cur:
        cur.execute(
            "SELECT region, product_id, sales_count, total_amount, rank_in_region,"
            " share_of_region, prev_week_amount FROM sales.sales_agg WHERE week_start = %s"
            " ORDER BY 1, 2",
            (week,),
        )
        return cur.fetchall()


def ch_week(week: dt.date) -> list[tuple]:
    rows = ClickHouse().query("sales/week_rows", week=week)
    return sorted(
        (r["region"], int(r["product_id"]), int(r["sales_count"]), Decimal(str(r["total_amount"])))
        for r in rows
    )


def assert_week_matches(done: Path, week: dt.date) -> None:
    """PostgreSQL and ClickHouse hold the week exactly as computed from the delivered files."""
    want = expected(done)
    want = want[want["week_start"] == week]
    got = pg_week(week)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in got] == [
        (w.region, w.product_id, w.sales_count, w.total_amount, w.rank_in_region)
        for w in want.sort_values(["region", "product_id"]).itertuples()
    ]
    assert ch_week(week) == sorted((r[0], r[1], r[2], r[3]) for r in got)


def summaries(week: dt.date) -> list[str]:
    return [m["text"] for m in outbox("summary") if f"sales week {week}" in m["text"]]


def test_late_files_kills_force_and_redis_loss(inbox: Inbox, delivered: Path) -> None:
    done = delivered.parent / "delivered"
    assert build(SalesBackfill(start=WEEKS[0], end=WEEKS[-1]))
    for week in WEEKS:
        assert_week_matches(done, week)
    late_weeks = WEEKS[1:7]
    assert all(not [r for r in pg_week(w) if r[0] == "East"] for w in late_weeks)
    warnings = [m["text"] for m in outbox("warning")]
    assert len(warnings) == 6 and all("no files for region(s) East" in w for w in warnings)
    ranged = [m["text"] for m in outbox("summary")]
    assert len(ranged) == 1 and f"sales weeks {WEEKS[0]} to {WEEKS[-1]}: 8 week(s)" in ranged[0]

    # A late file each time, the run that takes it killed at one boundary, then run again.
    for point, name in LATE.items():
        week = WEEKS[list(LATE).index(point) + 1]
        deliver(delivered / name, inbox, done)
        Register.clear_instance_cache()
        # The task's process dies there (for notify.* the worker too, in the failure message's
        # own send: that message then goes out with the rerun, at-least-once).
        assert killed_at(point, lambda week=week: build(SalesWeekly(week=week))) in (0, -9)
        assert build(SalesWeekly(week=week)), point
        died = [m["text"] for m in outbox("failure") if "exit code -9" in m["text"]]
        family = {"sales": "SalesAggregates", "replace": "SalesAggregatesToClickHouse"}
        assert any(
            f"{family.get(point.split('.')[0], 'SalesSummary')} failed (week={week})" in d
            for d in died
        ), f"{point}: no task was killed there"
        assert_week_matches(done, week)
        said = summaries(week)
        recomputed = [s for s in said if "recomputed" in s]
        if point == "notify.before_send":
            # At-most-once: recorded, then the run died before sending; not sent again.
            assert recomputed == []
        else:
            assert len(recomputed) == 1, point
            assert f"East, this week: rows 0 -> {east_rows(done, week):,}" in recomputed[0]
            assert "(files 0 -> 1)" in recomputed[0]
    statuses = {(m["kind"], m["status"]) for m in ledger("sales")}
    assert ("summary", "unknown") in statuses  # the two kills around the summary's send

    # The next run over every week takes the week after each late file too (its change against
    # the previous week), in both databases.
    assert build(SalesBackfill(start=WEEKS[0], end=WEEKS[-1]))
    for week in WEEKS:
        assert_week_matches(done, week)
    totals = {(w, r[0], r[1]): r[3] for w in WEEKS for r in pg_week(w)}
    for week in WEEKS[1:]:
        for region, product, _, _, _, _, previous in pg_week(week):
            assert previous == totals.get((week - dt.timedelta(weeks=1), region, product))

    # --force recomputes and replaces: the same rows, never doubled, no new message.
    before = {w: (pg_week(w), ch_week(w)) for w in WEEKS[:3]}
    messages = len(outbox())
    Register.clear_instance_cache()
    assert build(SalesBackfill(start=WEEKS[0], end=WEEKS[2], force=True))
    assert {w: (pg_week(w), ch_week(w)) for w in WEEKS[:3]} == before
    assert len(outbox()) == messages

    # Redis lost between two runs: nothing new is sent.
    connect().flushdb()
    assert build(SalesBackfill(start=WEEKS[0], end=WEEKS[-1]))
    assert len(outbox()) == messages

    # The backfill's message stood for the first week's summary: --resend sends the week's own.
    Register.clear_instance_cache()
    assert build(SalesWeekly(week=WEEKS[0]))
    assert len(outbox()) == messages
    Register.clear_instance_cache()
    assert build(SalesWeekly(week=WEEKS[0], resend=True))
    assert len(outbox()) == messages + 1 and len(summaries(WEEKS[0])) == 1


def east_rows(done: Path, week: dt.date) -> int:
    want = expected(done)
    return int(want[(want["week_start"] == week) & (want["region"] == "East")]["sales_count"].sum())


def test_a_held_lock_fails_the_week_within_its_timeout_with_a_clear_message(
    inbox: Inbox, delivered: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert build(SalesWeekly(week=WEEKS[0]))
    monkeypatch.setenv("PIPELINE_PG_LOCK_TIMEOUT_S", "1")
    holder = postgres.connect()
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE sales.sales_agg IN ACCESS EXCLUSIVE MODE")
        began = time.monotonic()
        Register.clear_instance_cache()
        assert not build(SalesWeekly(week=WEEKS[0], force=True))
        assert time.monotonic() - began < 30
    finally:
        holder.rollback()
        holder.close()
    failure = outbox("failure")[-1]["text"]
    assert "SalesAggregates failed (week=2023-09-04)" in failure
    assert "PostgresTimeout: sales/" in failure
    assert "gave up waiting 1 s for a lock another session holds" in failure
    assert "PIPELINE_PG_LOCK_TIMEOUT_S" in failure


def test_a_backfill_killed_after_its_one_summary_sends_it_once(
    inbox: Inbox, delivered: Path
) -> None:
    """The backfill's one message stands for its weeks' summaries: killed right after sending it
    (before the weeks are recorded as covered), the rerun sends nothing more and records them;
    a week run afterwards sends nothing either."""
    backfill = SalesBackfill(start=WEEKS[0], end=WEEKS[-1])
    assert killed_at("sales.range_summary_sent", lambda: build(backfill)) in (0, -9)
    assert len(outbox("summary")) == 1
    Register.clear_instance_cache()
    assert build(SalesBackfill(start=WEEKS[0], end=WEEKS[-1]))
    sent = outbox("summary")
    assert len(sent) == 1 and f"sales weeks {WEEKS[0]} to {WEEKS[-1]}: 8 week(s)" in sent[0]["text"]
    covered = [m for m in ledger("sales") if m["kind"] == "summary" and m["metric"] == ""]
    assert sum(1 for m in covered if m["body"].startswith("in the message of")) == 8
    for week in WEEKS[:2]:
        Register.clear_instance_cache()
        assert build(SalesWeekly(week=week))
    assert len(outbox("summary")) == 1
