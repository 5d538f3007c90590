"""The telemetry mart with completeness deciding completion and no silent success, on the real
servers: an empty or mostly unmatched CRM answer fails the day (or warns); late telemetry
recomputes the day and the summary says what changed; a run killed at each boundary and rerun
gives the exact day and no more summaries than the policy allows; a flushed Redis sends nothing
new; the CRM's personal data in work files is deleted by retention after its age."""

from __future__ import annotations

import datetime as dt
import os
import time

import luigi
import pandas as pd
import pytest
from luigi.task_register import Register

from config.settings import load_settings
from demo.crm_service import CrmData
from demo.telemetry_generator import TelemetrySpec, write_day
from pipeline.retention.tasks import ApplyRetention
from pipeline.systems.redis import connect
from pipeline.telemetry.tasks import TelemetryMart
from tests.fixtures.periods import killed_at, ledger, outbox
from tests.telemetry.test_mart_flow import SPEC, crm, expected, mart_rows

pytestmark = pytest.mark.integration
__all__ = ["crm"]  # the CRM stand-in fixture, shared with test_mart_flow


def build(day: dt.date, **kwargs: object) -> bool:
    Register.clear_instance_cache()
    return luigi.build(
        [TelemetryMart(date=day, **kwargs)], local_scheduler=True, log_level="WARNING"
    )


def assert_exact(day: dt.date) -> None:
    got, want = mart_rows(day), expected(day)
    assert got["user_id"].tolist() == want["user_id"].tolist()
    for column in ("total_actions", "grasp_count", "total_usage_seconds", "crm_matched"):
        assert got[column].tolist() == want[column].tolist(), column


def summaries(day: dt.date) -> list[str]:
    return [m["text"] for m in outbox("summary") if f"telemetry mart {day}" in m["text"]]


def test_an_empty_crm_answer_fails_the_day(crm: CrmData) -> None:
    day = dt.date(2024, 6, 3)
    write_day(day, SPEC)
    crm.records = []
    assert not build(day)
    failures = [m["text"] for m in outbox("failure") if "TransformData" in m["text"]]
    assert failures and "the CRM answered with no customers" in failures[-1]
    assert mart_rows(day).empty and summaries(day) == []


def test_a_mostly_unknown_crm_fails_or_warns_by_the_settings(
    crm: CrmData, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = dt.date(2024, 6, 4)
    write_day(day, SPEC)
    crm.records = crm.records[:8]  # the CRM knows 8 of 40 users
    assert not build(day)
    failure = [m["text"] for m in outbox("failure") if "TransformData" in m["text"]][-1]
    assert "are users the CRM does not know (over PIPELINE_CRM_UNMATCHED_FAIL_SHARE 50%)" in failure
    monkeypatch.setenv("PIPELINE_CRM_UNMATCHED_FAIL_SHARE", "0.95")
    assert build(day)
    warning = outbox("warning")
    assert (
        len(warning) == 1
        and "the CRM does not know (over PIPELINE_CRM_UNMATCHED_WARN" in (warning[0]["text"])
    )
    assert build(day) and len(outbox("warning")) == 1  # once


def test_late_telemetry_recomputes_the_day_and_the_summary_says_what_changed(
    crm: CrmData,
) -> None:
    day = dt.date(2024, 6, 10)
    write_day(day, TelemetrySpec(users=30, seed=5))
    assert build(day)
    assert_exact(day)
    assert len(summaries(day)) == 1
    write_day(day, SPEC)  # late uploads: more users that day
    assert build(day)
    assert_exact(day)
    said = summaries(day)
    assert len(said) == 2 and said[1].startswith(f"🔁 telemetry mart {day} recomputed")
    assert "device_events: " in said[1] and " -> " in said[1]
    # Nothing new after that, Redis lost or not; --force replaces without a message.
    connect().flushdb()
    before = mart_rows(day)
    assert build(day) and build(day, force=True)
    pd.testing.assert_frame_equal(mart_rows(day), before)
    assert len(summaries(day)) == 2
    assert build(day, resend=True) and len(summaries(day)) == 3


POINTS = ["replace.before_swap", "replace.after_swap", "notify.after_send"]


@pytest.mark.parametrize(
    ("point", "summaries_after"),
    [("replace.before_swap", 1), ("replace.after_swap", 1), ("notify.after_send", 1)],
)
def test_a_kill_at_each_boundary_then_a_rerun_gives_the_exact_day(
    crm: CrmData, point: str, summaries_after: int
) -> None:
    day = dt.date(2024, 6, 17) + dt.timedelta(days=POINTS.index(point))
    write_day(day, SPEC)
    assert killed_at(point, lambda: build(day)) in (0, -9)
    assert [m for m in outbox("failure") if "exit code -9" in m["text"]]
    assert build(day)
    assert_exact(day)
    assert len(summaries(day)) == summaries_after  # at-most-once: never twice
    assert {m["status"] for m in ledger("telemetry") if m["period"] == day.isoformat()} <= {
        "sent",
        "unknown",
    }


def test_retention_deletes_the_personal_work_files_after_their_age(crm: CrmData) -> None:
    old_day, new_day = dt.date(2024, 6, 24), dt.date(2024, 6, 25)
    for day in (old_day, new_day):
        write_day(day, SPEC)
        assert build(day)
    root = load_settings().paths.runtime / "telemetry"
    for name in ("crm.parquet", "mart.parquet", "telemetry.parquet"):
        path = root / old_day.isoformat() / name
        assert path.stat().st_mode & 0o777 == 0o600
        eight_days = time.time() - 8 * 86400
        os.utime(path, (eight_days, eight_days))
    assert luigi.build([ApplyRetention(day=dt.date.today())], local_scheduler=True)
    assert luigi.build([ApplyRetention(day=dt.date.today(), force=True)], local_scheduler=True)
    assert sorted(p.name for p in (root / old_day.isoformat()).iterdir()) == ["telemetry.parquet"]
    assert {p.name for p in (root / new_day.isoformat()).iterdir()} >= {
        "crm.parquet",
        "mart.parquet",
    }
    # The day stays complete (its mart is in ClickHouse); a forced rerun reads the CRM again.
    assert build(old_day, force=True)
    assert (root / old_day.isoformat() / "crm.parquet").exists()
    assert_exact(old_day)
