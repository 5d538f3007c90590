"""The morning reports on the real ClickHouse and Redis: numbers from the raw tables, text and
picture kept and sent (to the outbox here), once per day unless asked again."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import luigi
import pytest
from luigi.task_register import Register

from config.settings import load_settings
from demo.simulator import SimSpec, write_day
from pipeline.reports.tasks import MorningReports
from pipeline.systems.clickhouse import ClickHouse
from pipeline.systems.redis import connect
from pipeline.systems.telegram import CAPTION_LIMIT
from tests.fixtures.periods import forget, killed_at, ledger, outbox_modes

pytestmark = pytest.mark.integration

START = dt.date(2024, 3, 4)
DAY = START + dt.timedelta(days=7)
SPEC = SimSpec(
    seed=8, start=START, base_users=2_000, feed_actions_per_day=15_000, messages_per_day=2_000
)


@pytest.fixture(scope="module")
def week(stack: None) -> None:
    for i in range(8):
        write_day(START + dt.timedelta(days=i), SPEC)


def outbox() -> list[dict[str, str]]:
    return [json.loads(p.read_text()) for p in sorted(load_settings().paths.outbox.glob("*.json"))]


def build(**kwargs: object) -> bool:
    return luigi.build(
        [MorningReports(date=DAY, **kwargs)], local_scheduler=True, log_level="WARNING"
    )


def test_reports_are_built_kept_and_sent_once(week: None, runtime: Path) -> None:
    forget("reports")
    assert build()
    sent = outbox()
    # One message per report: the picture with the text as its caption, never half of it.
    assert len(sent) == 2 and all("photo" in m for m in sent)
    assert all(len(m["text"]) <= CAPTION_LIMIT for m in sent)
    texts = [m["text"] for m in sent]
    photos = sent
    feed = next(t for t in texts if t.startswith("📰 Feed report for 2024-03-11"))
    # DAU from the raw table, independently.
    settings = ClickHouse().settings
    import requests

    dau = requests.post(
        settings.http_url,
        data=(
            f"SELECT uniqExact(user_id) FROM {settings.database('simulator')}.feed_actions"
            f" WHERE toDate(time) = '{DAY}'"
        ).encode(),
        timeout=30,
    ).text.strip()
    assert f"DAU: {int(dau):,} (" in feed and "vs week before" in feed
    ctr = float(re.search(r"CTR: ([0-9.]+) ", feed).group(1))  # type: ignore[union-attr]
    assert 0.15 < ctr < 0.25  # generated at about one like per five views
    folder = load_settings().paths.reports / DAY.isoformat()
    assert (folder / "feed.txt").read_text() == feed
    assert (folder / "app.png").read_bytes().startswith(b"\x89PNG")
    assert all(Path(p["photo"]).read_bytes().startswith(b"\x89PNG") for p in photos)
    assert {m["status"] for m in ledger("reports")} == {"sent"}
    # A rerun sends nothing, with Redis or without it (the ledger is in PostgreSQL); --force
    # rebuilds the kept files and sends nothing; --resend sends both again, once.
    assert build()
    connect(load_settings().redis).flushdb()
    assert build()
    assert len(outbox()) == 2
    (folder / "feed.txt").unlink()
    assert build(force=True)
    assert (folder / "feed.txt").read_text() == feed and len(outbox()) == 2
    assert build(resend=True)
    assert len(outbox()) == 4
    assert build()
    assert len(outbox()) == 4
    assert outbox_modes() == {0o600}


@pytest.mark.parametrize(("point", "copies"), [("notify.before_send", 1), ("notify.after_send", 2)])
def test_a_run_killed_around_a_send_then_rerun_sends_each_report_as_the_policy_says(
    week: None, runtime: Path, point: str, copies: int
) -> None:
    """At-least-once: a report whose run died after recording it is sent by the rerun; one that
    died after sending it, before marking it, is sent again (the documented duplicate)."""
    forget("reports")
    Register.clear_instance_cache()
    killed_at(point, lambda: build())
    assert build()
    reports = [m for m in outbox() if m["kind"].startswith("report-")]
    by_kind = {k: sum(m["kind"] == k for m in reports) for k in ("report-feed", "report-app")}
    assert sorted(by_kind.values()) == sorted([copies, 1])  # the killed one, and the other
    assert {m["status"] for m in ledger("reports") if m["kind"] == "report"} == {"sent"}
    assert build() and len([m for m in outbox() if m["kind"].startswith("report-")]) == len(reports)
