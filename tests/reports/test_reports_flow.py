"""The morning reports on the real ClickHouse and Redis: numbers from the raw tables, text and
picture kept and sent (to the outbox here), once per day unless asked again."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import luigi
import pytest

from config.settings import load_settings
from demo.simulator import SimSpec, write_day
from pipeline.reports.tasks import MorningReports
from pipeline.systems.clickhouse import ClickHouse
from pipeline.systems.redis import connect

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
    connect(load_settings().redis).delete(*(f"markers:report:{n}:{DAY}" for n in ("feed", "app")))
    assert build()
    sent = outbox()
    texts = [m["text"] for m in sent if "photo" not in m]
    photos = [m for m in sent if "photo" in m]
    assert len(texts) == 2 and len(photos) == 2
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
    # A rerun sends nothing; --resend sends both again.
    assert build()
    assert len(outbox()) == 4
    assert build(resend=True)
    assert len(outbox()) == 8
