"""Completeness decides completion: an output is complete while the inputs it recorded are the
sources' now, and, in a forced run, once that run has recomputed it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.core import periods
from pipeline.core.workfiles import WorkFileTarget, inputs_of, read_frame, write_frame
from pipeline.systems.postgres import transaction
from tests.fixtures.periods import forget

SOURCES = {"feed_actions": {"rows": 10, "max_time": 1705363199}}


def test_the_digest_is_stable_and_changes_say_what_changed() -> None:
    assert periods.digest({"b": 1, "a": [1, 2]}) == periods.digest({"a": [1, 2], "b": 1})
    assert periods.digest(SOURCES) != periods.digest({"feed_actions": {"rows": 11}})
    later = {"feed_actions": {"rows": 1_250, "max_time": 1705363200}, "message_actions": None}
    assert periods.changes(None, later) == []
    assert periods.changes(SOURCES, later) == [
        "feed_actions: max_time 1,705,363,199 -> 1,705,363,200, rows 10 -> 1,250"
    ]
    assert periods.changes(SOURCES, SOURCES) == []


def test_a_work_file_is_complete_while_its_inputs_hold(tmp_path: Path) -> None:
    now = dict(SOURCES)
    target = WorkFileTarget(str(tmp_path / "feed.parquet"), lambda: now)
    assert not target.exists()
    write_frame(pd.DataFrame({"user_id": [1, 2], "os": ["iOS", ""]}), target, SOURCES, "")
    assert target.exists() and inputs_of(target) == (SOURCES, "")
    assert read_frame(target)["os"].tolist() == ["iOS", ""]
    now["feed_actions"] = {"rows": 11, "max_time": 1705363199}  # a late event
    assert not target.exists()
    forced = WorkFileTarget(str(tmp_path / "feed.parquet"), lambda: SOURCES, "run-1")
    assert not forced.exists()  # a forced run redoes it, once
    write_frame(read_frame(target), forced, SOURCES, "run-1")
    assert forced.exists() and WorkFileTarget(forced.path, lambda: SOURCES).exists()


@pytest.mark.integration
def test_an_output_record_keeps_what_it_was_computed_from(stack: None) -> None:
    forget("periodtest")
    now = dict(SOURCES)
    target = periods.InputsTarget("periodtest", "table", "2024-01-15", lambda: now)
    assert not target.exists()
    periods.write_now("periodtest", "table", "2024-01-15", SOURCES, rows=3)
    assert target.exists()
    later = {"feed_actions": {"rows": 12, "max_time": 1705363199}}
    now.update(later)
    assert not target.exists()
    periods.write_now("periodtest", "table", "2024-01-15", later, token="run-2", rows=4)
    record = target.record()
    assert record is not None and (record.previous, record.rows) == (SOURCES, 4)
    assert target.exists()
    assert not periods.InputsTarget(
        "periodtest", "table", "2024-01-15", lambda: now, "run-3"
    ).exists()
    with transaction() as cur:  # the same inputs again: what changed before is kept
        periods.write(cur, "periodtest", "table", "2024-01-15", later, "", 4)
    assert periods.read("periodtest", "table", "2024-01-15").previous == SOURCES  # type: ignore[union-attr]
