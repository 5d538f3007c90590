"""The telemetry mart on the real servers: a day checked against an independent computation from
the raw tables and the CRM's records; reruns replace the day and keep the month; an empty day;
the CRM down or malformed (retries, then a clear failure and notifications); no personal data in
logs or notifications."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import luigi
import pandas as pd
import pytest

from demo.crm_service import CrmData, customers, serve
from demo.telemetry_generator import TelemetrySpec, ensure_tables, write_day
from pipeline.systems.clickhouse import ClickHouse
from pipeline.systems.postgres import transaction
from pipeline.telemetry.tasks import LoadToClickHouse, TelemetryMart
from tests.systems.test_crm import Scripted

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).parent / "luigi")
USERS = 40
SPEC = TelemetrySpec(users=USERS, seed=5)
KNOWN = USERS - 3  # users 38-40 are unknown to the CRM


@pytest.fixture
def crm(stack: None, runtime: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrmData]:
    data = CrmData(customers(KNOWN, SPEC.seed), token="crm-test-token")
    server, _ = serve("127.0.0.1", 0, data)
    monkeypatch.setenv("PIPELINE_CRM_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("PIPELINE_CRM_TOKEN", "crm-test-token")
    monkeypatch.setenv("PIPELINE_CRM_BACKOFF_S", "0.01")
    monkeypatch.setenv("PIPELINE_CRM_MAX_ATTEMPTS", "2")
    yield data
    server.shutdown()
    server.server_close()


def build(day: dt.date) -> bool:
    return luigi.build([TelemetryMart(date=day)], local_scheduler=True, log_level="WARNING")


def run_command(day: dt.date) -> str:
    """The day's flow as cron runs it, ``luigi --module pipeline.telemetry ...``, with the
    project's logging (luigi.cfg -> config/logging.ini): JSON lines in ``<runtime>/logs/``, the
    forked task processes' included. Returns what it printed."""
    env = {**os.environ, "LUIGI_CONFIG_PATH": str(ROOT / "luigi.cfg")}
    command = [LUIGI, "--module", "pipeline.telemetry", "telemetry.TelemetryMart"]
    result = subprocess.run(
        [*command, "--date", day.isoformat(), "--local-scheduler"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def logged(runtime: Path) -> list[dict[str, object]]:
    """Every record in the runtime's JSON log files."""
    return [
        json.loads(line)
        for path in sorted((runtime / "logs").glob("*.log*"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def mart_rows(day: dt.date) -> pd.DataFrame:
    return pd.DataFrame(ClickHouse().query("telemetry/day_rows", day=day))


def expected(day: dt.date) -> pd.DataFrame:
    """The day's mart, computed in pandas from the raw rows and the CRM's records."""
    lo = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    hi = lo + dt.timedelta(days=1)
    with transaction() as cur:
        cur.execute(
            "SELECT user_id, prosthesis_id, action_type, response_time_ms, battery_level"
            " FROM telemetry.device_events WHERE event_time >= %s AND event_time < %s",
            (lo, hi),
        )
        events = pd.DataFrame(
            cur.fetchall(), columns=["user_id", "prosthesis_id", "action", "ms", "battery"]
        )
        cur.execute(
            "SELECT user_id, prosthesis_id, started_at, ended_at FROM telemetry.usage_sessions"
            " WHERE started_at < %s AND ended_at > %s",
            (hi, lo),
        )
        sessions = pd.DataFrame(cur.fetchall(), columns=["user_id", "prosthesis_id", "a", "b"])
    g = events.groupby(["user_id", "prosthesis_id"])
    out = g.agg(
        total_actions=("action", "size"),
        avg_response_time=("ms", "mean"),
        max_response_time=("ms", "max"),
        min_response_time=("ms", "min"),
        avg_battery_level=("battery", "mean"),
        min_battery_level=("battery", "min"),
    )
    for action in ("grasp", "release", "flex"):
        out[f"{action}_count"] = g["action"].agg(lambda s, a=action: int((s == a).sum()))
    sessions["seconds"] = [
        (min(b, hi) - max(a, lo)).total_seconds()
        for a, b in zip(sessions["a"], sessions["b"], strict=True)
    ]
    usage = sessions.groupby(["user_id", "prosthesis_id"])["seconds"].sum()
    out["total_usage_seconds"] = usage.reindex(out.index).fillna(0).astype(int)
    out = out.reset_index()
    hours = out["total_usage_seconds"] / 3600
    out["actions_per_hour"] = [
        round(a / h, 2) if h > 0 else 0.0 for a, h in zip(out["total_actions"], hours, strict=True)
    ]
    # The documented formula, written out again here.
    out["efficiency_score"] = [
        round(
            100
            * (
                0.5 * min(max((1000 - r) / 900, 0), 1)
                + 0.3 * min(max(p / 120, 0), 1)
                + 0.2 * min(max(b / 100, 0), 1)
            ),
            2,
        )
        for r, p, b in zip(
            out["avg_response_time"], out["actions_per_hour"], out["avg_battery_level"], strict=True
        )
    ]
    crm = {c["user_id"]: c for c in customers(KNOWN, SPEC.seed)}
    out["crm_matched"] = [int(u in crm) for u in out["user_id"]]
    out["status"] = [crm[u]["status"] if u in crm else "" for u in out["user_id"]]
    return out.sort_values(["user_id", "prosthesis_id"], ignore_index=True)


def outbox(kind: str) -> list[str]:
    from config.settings import load_settings

    texts = []
    for path in sorted(load_settings().paths.outbox.glob("*.json")):
        message = json.loads(path.read_text())
        if message["kind"] == kind:
            texts.append(message["text"])
    return texts


def test_the_mart_for_a_day_matches_an_independent_computation(crm: CrmData, runtime: Path) -> None:
    day = dt.date(2024, 2, 12)
    write_day(day, SPEC)
    printed = run_command(day)
    got, want = mart_rows(day), expected(day)
    assert len(got) == len(want) > 0
    assert got["user_id"].tolist() == want["user_id"].tolist()
    assert got["prosthesis_id"].tolist() == want["prosthesis_id"].tolist()
    for column in ("total_actions", "grasp_count", "release_count", "flex_count"):
        assert got[column].tolist() == want[column].tolist(), column
    assert got["total_usage_seconds"].tolist() == want["total_usage_seconds"].tolist()
    for column in (
        "avg_response_time",
        "max_response_time",
        "min_response_time",
        "avg_battery_level",
        "min_battery_level",
        "actions_per_hour",
        "efficiency_score",
    ):
        assert got[column].to_numpy() == pytest.approx(want[column].to_numpy(), abs=0.011), column
    assert got["crm_matched"].tolist() == want["crm_matched"].tolist()
    assert got["status"].tolist() == want["status"].tolist()
    # Users unknown to the CRM are kept, with empty CRM fields, and counted in the summary.
    unknown = got[got["crm_matched"] == 0]
    assert len(unknown) > 0 and set(unknown["user_id"]) <= {38, 39, 40}
    assert unknown["order_date"].isna().all()
    summary = outbox("summary")[-1]
    assert (
        f"telemetry mart {day}" in summary and f"{len(unknown)} row(s) of users unknown" in summary
    )
    # Personal data never reaches the logs, the console or the notifications; the token neither.
    records = logged(runtime)
    flow = [r for r in records if str(r.get("labels.task_family", "")).startswith("telemetry.")]
    assert flow, f"no record of the flow's tasks in {runtime / 'logs'}"
    messages = outbox("summary") + outbox("failure")
    said = "\n".join([json.dumps(records, ensure_ascii=False), printed, *messages])
    private = [c[k] for c in customers(KNOWN, SPEC.seed) for k in ("email", "last_name")]
    assert not [p for p in private if p in said]
    assert "crm-test-token" not in said


def test_a_rerun_replaces_the_day_and_keeps_the_rest_of_the_month(crm: CrmData) -> None:
    first, second = dt.date(2024, 3, 4), dt.date(2024, 3, 5)
    for day in (first, second):
        write_day(day, SPEC)
        assert build(day)
    first_rows, second_rows = mart_rows(first), mart_rows(second)
    LoadToClickHouse(date=first).run()  # the same day again, forced past its marker
    pd.testing.assert_frame_equal(mart_rows(first), first_rows)  # no duplicates, nothing lost
    pd.testing.assert_frame_equal(mart_rows(second), second_rows)
    # The day's telemetry changes (fewer users): a rerun replaces exactly that day.
    write_day(first, TelemetrySpec(users=10, seed=5))
    for name in ("telemetry.parquet", "mart.parquet"):
        (Path(LoadToClickHouse(date=first).input()["rows"].path).parent / name).unlink()
    luigi.build(
        [LoadToClickHouse(date=first).requires()["rows"]],
        local_scheduler=True,
        log_level="WARNING",
    )
    LoadToClickHouse(date=first).run()
    assert set(mart_rows(first)["user_id"]) <= set(range(1, 11))
    pd.testing.assert_frame_equal(mart_rows(second), second_rows)


def test_a_day_without_telemetry_gives_an_empty_day(crm: CrmData) -> None:
    day = dt.date(2024, 4, 1)
    ensure_tables()
    with transaction() as cur:
        cur.execute("DELETE FROM telemetry.device_events WHERE event_time::date = %s", (day,))
    assert build(day)
    assert mart_rows(day).empty
    assert f"telemetry mart {day}: 0 rows" in outbox("summary")[-1]


def test_the_crm_down_retries_then_fails_with_a_clear_error(
    crm: CrmData, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = dt.date(2024, 5, 6)
    write_day(day, SPEC)
    down = Scripted([(503, {}, b"maintenance")])
    monkeypatch.setenv("PIPELINE_CRM_URL", down.url)
    try:
        assert not build(day)
    finally:
        down.close()
    # Two retries by Luigi (three runs), each run trying the CRM twice.
    assert len(down.seen) == 6
    failures = [f for f in outbox("failure") if "ExtractCrmData" in f]
    assert len(failures) == 3
    assert "CrmError" in failures[-1] and "HTTP 503 after 2 attempts" in failures[-1]
    assert mart_rows(day).empty


def test_a_malformed_crm_response_fails_with_a_clear_error(
    crm: CrmData, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = dt.date(2024, 5, 7)
    write_day(day, SPEC)
    broken = Scripted([(200, {"Content-Type": "text/html"}, b"<html>login</html>")])
    monkeypatch.setenv("PIPELINE_CRM_URL", broken.url)
    try:
        assert not build(day)
    finally:
        broken.close()
    assert "the response is not JSON (text/html)" in outbox("failure")[-1]
    assert mart_rows(day).empty
