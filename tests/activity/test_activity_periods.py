"""The daily activity flow with completeness deciding completion, on the real servers: late
events recompute the day; --force replaces and never doubles; a run killed at each boundary and
rerun gives the exact day; two overlapping runs of one month give both days exactly; a held
period lock fails the load within its timeout, clearly; the catch-up covers the last days."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import luigi
import pandas as pd
import pytest
from luigi.task_register import Register

from demo.simulator import SimSpec, write_day
from pipeline.activity.tasks import OUTPUT, ActivityCatchUp, ActivityDaily, LoadActivity
from pipeline.core import periods
from pipeline.core.tasks import yesterday
from pipeline.systems import postgres
from pipeline.systems.clickhouse import ClickHouse
from pipeline.systems.postgres import transaction
from tests.activity.test_activity_flow import expected, table_rows
from tests.fixtures.periods import killed_at, outbox

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).parent / "luigi")


def spec(seed: int, feed: int = 6_000) -> SimSpec:
    return SimSpec(seed=seed, base_users=800, feed_actions_per_day=feed, messages_per_day=900)


def build(day: dt.date, **kwargs: object) -> bool:
    Register.clear_instance_cache()
    return luigi.build(
        [ActivityDaily(date=day, **kwargs)], local_scheduler=True, log_level="WARNING"
    )


def assert_exact(day: dt.date) -> None:
    got = table_rows(day).drop(columns=["event_date"])
    pd.testing.assert_frame_equal(got, expected(day), check_dtype=False)


def test_late_events_recompute_the_day_and_force_replaces(stack: None, runtime: Path) -> None:
    day = dt.date(2024, 3, 12)
    write_day(day, spec(1))
    assert build(day)
    assert_exact(day)
    record = periods.read("activity", OUTPUT, day.isoformat())
    assert record is not None and record.inputs["feed_actions"]["rows"] > 0
    assert LoadActivity(date=day).complete()
    # Late events for the day: the next run recomputes it from the sources.
    write_day(day, spec(2, feed=7_500))
    assert not ActivityDaily(date=day).complete()
    assert build(day)
    assert_exact(day)
    later = periods.read("activity", OUTPUT, day.isoformat())
    assert later is not None and later.previous == record.inputs
    # --force: recomputed and replaced, the same rows, never twice.
    before = table_rows(day)
    assert build(day, force=True)
    pd.testing.assert_frame_equal(table_rows(day), before)
    forced = periods.read("activity", OUTPUT, day.isoformat())
    assert forced is not None and forced.force_token and forced.digest == later.digest


@pytest.mark.parametrize(
    "point", ["workfile.after_write", "replace.before_swap", "replace.after_swap"]
)
def test_a_kill_at_each_boundary_then_a_rerun_gives_the_exact_day(
    stack: None, runtime: Path, point: str
) -> None:
    day, other = dt.date(2024, 3, 14), dt.date(2024, 3, 15)
    write_day(other, spec(5))
    assert build(other)
    kept = table_rows(other)
    write_day(day, spec(3))
    assert build(day)
    write_day(day, spec(4, feed=5_000))  # a correction: the day must be recomputed
    assert killed_at(point, lambda: build(day)) == 0
    died = [m["text"] for m in outbox("failure") if "exit code -9" in m["text"]]
    assert died, f"{point}: no task was killed there"
    assert build(day)
    assert_exact(day)
    pd.testing.assert_frame_equal(table_rows(other), kept)  # the month's other day untouched


def waiting_for(lock: str) -> int:
    """Sessions waiting for the advisory lock named ``lock`` (its 64-bit key is split into
    pg_locks' classid and objid)."""
    key = postgres.lock_key(lock) & 0xFFFFFFFFFFFFFFFF
    with transaction() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
            (key >> 32, key & 0xFFFFFFFF),
        )
        return int(cur.fetchone()[0])


def test_two_overlapping_runs_of_one_month_give_both_days_exactly(
    stack: None, runtime: Path
) -> None:
    days = [dt.date(2024, 3, 20), dt.date(2024, 3, 21)]
    for i, day in enumerate(days):
        write_day(day, spec(10 + i))
    database = ClickHouse().settings.database("test")
    ClickHouse().execute("activity/create_activity_daily")
    lock = f"clickhouse {database}.activity_daily partition 202403"
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_CRASH_AT"}
    # Both runs reach the swap of the same month while this test holds its lock: they wait,
    # then take turns. Without the lock each would rebuild the month without the other's day.
    with postgres.advisory_lock(lock, 30):
        runs = [
            subprocess.Popen(
                [LUIGI, "--module", "pipeline.activity", "activity.ActivityDaily"]
                + ["--date", day.isoformat(), "--local-scheduler", "--no-lock"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for day in days
        ]
        deadline = time.monotonic() + 120
        while waiting_for(lock) < 2:
            assert time.monotonic() < deadline, "the two runs never met at the month's lock"
            assert all(r.poll() is None for r in runs), [r.stderr.read() for r in runs]  # type: ignore[union-attr]
            time.sleep(0.2)
    for run in runs:
        assert run.wait(180) == 0, run.stderr.read()  # type: ignore[union-attr]
    for day in days:
        assert_exact(day)


def test_a_held_period_lock_fails_the_load_within_its_timeout(
    stack: None, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = dt.date(2024, 3, 25)
    write_day(day, spec(20))
    monkeypatch.setenv("PIPELINE_PERIOD_LOCK_TIMEOUT_S", "1")
    database = ClickHouse().settings.database("test")
    with postgres.advisory_lock(f"clickhouse {database}.activity_daily partition 202403", 5):
        began = time.monotonic()
        assert not build(day)
        assert time.monotonic() - began < 60
    failure = [m["text"] for m in outbox("failure") if "LoadActivity" in m["text"]][-1]
    assert "LockTimeout: clickhouse" in failure and "activity_daily partition 202403" in failure
    assert (
        "for another run holding this lock (limit 1 s, setting PIPELINE_PERIOD_LOCK_TIMEOUT_S)"
        in (failure)
    )
    assert build(day)  # the lock released: the next run does the day
    assert_exact(day)


def test_the_catch_up_does_the_last_days_and_then_nothing(stack: None, runtime: Path) -> None:
    Register.clear_instance_cache()
    assert luigi.build([ActivityCatchUp(days=2)], local_scheduler=True, log_level="WARNING")
    last = yesterday()
    for day in (last, last - dt.timedelta(days=1)):
        assert periods.read("activity", OUTPUT, day.isoformat()) is not None
    assert ActivityCatchUp(days=2).complete()
