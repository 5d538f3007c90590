"""Alert state and messages in PostgreSQL, on the real servers: a flushed Redis in the middle of
an incident neither re-alerts inside the cooldown nor forgets the recovery; a check killed
between recording and sending, or between sending and marking, is finished by the next check
(at-least-once) with ClickHouse's copy exact; a failed ClickHouse write loses no record."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import luigi
import pandas as pd
import pytest

from pipeline.alerts import tasks as alerts
from pipeline.alerts.tasks import AlertReplay, check_slot, load_config
from pipeline.systems.clickhouse import ClickHouse, ClickHouseError
from pipeline.systems.redis import connect
from tests.alerts.test_alerts_flow import config, days
from tests.fixtures.periods import killed_at, ledger, outbox

pytestmark = pytest.mark.integration
__all__ = ["config", "days"]  # fixtures shared with test_alerts_flow

MORNING, DURING, EVENING = (dt.datetime(2024, 4, 8, h, m) for h, m in ((11, 0), (14, 30), (18, 0)))


def replay(start: dt.datetime, end: dt.datetime) -> bool:
    """A replay of [start, end) (its marker in ClickHouse is per range: each test starts its
    morning at another quarter hour)."""
    return luigi.build(
        [AlertReplay(start=start, end=end)], local_scheduler=True, log_level="WARNING"
    )


def recorded() -> list[tuple[str, str]]:
    rows = ClickHouse().query("ops/alerts_between", start=f"{MORNING}", end=f"{EVENING}")
    return [(r["kind"], r["slot"]) for r in rows]


def kinds_sent() -> list[str]:
    return [m["kind"] for m in outbox() if m["kind"].startswith("alert-")]


def alert_rows() -> list[dict[str, object]]:
    """The ledger's alert messages (a killed check's failure message is there too)."""
    return [m for m in ledger("alerts") if m["kind"] != "failure"]


def test_a_flushed_redis_mid_incident_changes_nothing_people_see(
    days: None, config: Path, runtime: Path
) -> None:
    assert replay(MORNING, DURING)
    assert kinds_sent() == ["alert-alert"]
    connect().flushdb()
    assert replay(DURING, EVENING)
    assert kinds_sent() == ["alert-alert", "alert-recovery"]
    assert [k for k, _ in recorded()] == ["alert", "recovery"]


@pytest.mark.parametrize(
    ("point", "alerts_seen", "morning"),
    [
        ("notify.before_send", 1, MORNING + dt.timedelta(minutes=15)),
        ("notify.after_send", 2, MORNING + dt.timedelta(minutes=30)),
    ],
)
def test_a_check_killed_around_a_send_is_finished_by_the_next_check(
    days: None, config: Path, runtime: Path, point: str, alerts_seen: int, morning: dt.datetime
) -> None:
    killed_at(point, lambda: replay(morning, DURING))
    assert [m["status"] for m in alert_rows()] == ["pending"]
    assert replay(DURING + dt.timedelta(minutes=15), morning + dt.timedelta(hours=7))
    sent = kinds_sent()
    assert sent.count("alert-alert") == alerts_seen  # at-least-once: a duplicate after a kill
    assert sent.count("alert-recovery") == 1
    assert [(m["kind"], m["status"]) for m in alert_rows()] == [
        ("alert", "sent"),
        ("recovery", "sent"),
    ]
    assert [k for k, _ in recorded()] == ["alert", "recovery"]  # the copy: once each


def test_a_failed_clickhouse_write_loses_no_record_of_a_sent_alert(
    days: None, config: Path, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_config(config)
    slots = pd.date_range(MORNING, DURING, freq="15min", inclusive="left")
    real = alerts.replace_partition

    def refuse(*args: object, **kwargs: object) -> None:
        raise ClickHouseError("ops/alerts: HTTP 500: Code: 252. DB::Exception: Too many parts")

    monkeypatch.setattr(alerts, "replace_partition", refuse)
    with pytest.raises(ClickHouseError):
        for slot in slots:
            check_slot(slot, settings)
    assert kinds_sent() == ["alert-alert"]  # people got it
    assert [(m["kind"], m["status"]) for m in alert_rows()] == [("alert", "sent")]
    monkeypatch.setattr(alerts, "replace_partition", real)
    # The next check with a message rebuilds the month from the ledger.
    for slot in pd.date_range(DURING, EVENING, freq="15min", inclusive="left"):
        check_slot(slot, settings)
    assert [k for k, _ in recorded()] == ["alert", "recovery"]
