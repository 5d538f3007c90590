"""The foundation's end-to-end path on the real servers: a file in, PostgreSQL and ClickHouse out.

Checked against an independent computation from the file; a rerun changes nothing; a crash half
way (after the COPY, before the commit; after the ClickHouse insert, before its marker) followed
by a rerun gives the exact result. Each test uses its own day, so they share nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import luigi
import pytest

import pipeline.smoke as smoke
from pipeline.clickhouse import ClickHouse, ClickHouseMarkerTarget
from pipeline.postgres import transaction

pytestmark = pytest.mark.integration


def expected_from_file(path: Path) -> dict[str, tuple[int, Decimal]]:
    totals: dict[str, list] = defaultdict(lambda: [0, Decimal("0")])
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            totals[row["category"]][0] += 1
            totals[row["category"]][1] += Decimal(row["amount"])
    return {k: (v[0], v[1]) for k, v in totals.items()}


def pg_state(day: dt.date) -> list[tuple]:
    with transaction() as cur:
        cur.execute("SELECT to_regclass('ops.smoke_events') IS NOT NULL")
        if not cur.fetchone()[0]:
            return []
        cur.execute(
            "SELECT event_id, category, amount FROM ops.smoke_events WHERE event_date = %s"
            " ORDER BY event_id",
            (day,),
        )
        return cur.fetchall()


def ch_state(day: dt.date) -> dict[str, tuple[int, Decimal]]:
    rows = ClickHouse().query("smoke/daily_summary", day=day)
    return {r["category"]: (int(r["events"]), Decimal(str(r["amount"]))) for r in rows}


def run(day: dt.date) -> bool:
    return luigi.build([smoke.SmokeDemo(day=day)], local_scheduler=True, log_level="WARNING")


@pytest.fixture
def landed(stack: None, runtime: Path, request: pytest.FixtureRequest) -> tuple[dt.date, Path]:
    # A day of its own per test: no test sees another's rows or markers.
    day = dt.date(2023, 1, 1) + dt.timedelta(days=abs(hash(request.node.name)) % 3000)
    ClickHouse().execute("smoke/create_daily")
    return day, smoke.write_smoke_file(day, rows=500)


def test_file_to_postgres_and_clickhouse_matches_an_independent_computation(landed) -> None:
    day, path = landed
    assert run(day)
    assert len(pg_state(day)) == 500
    assert ch_state(day) == expected_from_file(path)
    assert smoke.SmokeDemo(day=day).complete()


def test_a_rerun_changes_nothing(landed) -> None:
    day, _ = landed
    assert run(day)
    first = (pg_state(day), ch_state(day))
    assert run(day)  # complete: skipped
    # Forced: the loads themselves run again and must replace, not add.
    smoke.SmokeEventsToPostgres(day=day).run()
    smoke.SmokeDailyToClickHouse(day=day).run()
    assert (pg_state(day), ch_state(day)) == first


def test_crash_after_copy_before_commit_leaves_nothing_then_rerun_is_exact(
    landed, monkeypatch: pytest.MonkeyPatch
) -> None:
    day, path = landed

    def die(*args: object, **kwargs: object) -> None:
        raise RuntimeError("worker killed after COPY")

    with monkeypatch.context() as patch:
        patch.setattr(smoke, "write_marker", die)
        assert not run(day)
    assert pg_state(day) == []
    assert not smoke.SmokeEventsToPostgres(day=day).complete()
    assert run(day)
    assert len(pg_state(day)) == 500
    assert ch_state(day) == expected_from_file(path)


def test_crash_after_clickhouse_insert_before_marker_then_rerun_has_no_duplicates(
    landed, monkeypatch: pytest.MonkeyPatch
) -> None:
    day, path = landed

    def die(self: ClickHouseMarkerTarget, rows_loaded: int) -> None:
        raise RuntimeError("worker killed before the marker")

    with monkeypatch.context() as patch:
        patch.setattr(ClickHouseMarkerTarget, "touch", die)
        assert not run(day)
    assert ch_state(day) == expected_from_file(path)  # the rows landed, the marker did not
    assert not smoke.SmokeDailyToClickHouse(day=day).complete()
    assert run(day)
    assert ch_state(day) == expected_from_file(path)  # replaced, not doubled


def test_missing_input_file_is_reported_not_invented(stack: None, runtime: Path) -> None:
    day = dt.date(2019, 5, 5)
    result = luigi.build(
        [smoke.SmokeDemo(day=day)], local_scheduler=True, detailed_summary=True, log_level="WARNING"
    )
    assert result.status.name == "MISSING_EXT"
    assert pg_state(day) == []
