"""The 15-minute alerts on the real ClickHouse and Redis: an injected incident raises exactly one
alert and then one recovery, recorded in ops.alerts and sent (to the outbox here) with a chart;
a replay of checked slots sends nothing again."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import luigi
import pandas as pd
import pytest

from config.settings import load_settings
from demo.simulator import Incident, SimSpec, write_day
from pipeline.alerts.tasks import AlertReplay, check_slot, ensure_tables, load_config
from pipeline.systems.clickhouse import ClickHouse
from pipeline.systems.postgres import transaction
from tests.fixtures.periods import forget, ledger

pytestmark = pytest.mark.integration

START = dt.date(2024, 4, 1)
DAY = START + dt.timedelta(days=7)
INCIDENT = Incident(
    "views", dt.datetime(2024, 4, 8, 14, 0), dt.datetime(2024, 4, 8, 15, 30), factor=0.3
)
SPEC = SimSpec(
    seed=12,
    start=START,
    base_users=5_000,
    feed_actions_per_day=120_000,
    messages_per_day=5_000,
    incidents=(INCIDENT,),
)

CONFIG = """
slices = []
cooldown_minutes = 120
history_days = 7
dashboard_url = "http://grafana.example/d/etl-business"
chart_url = "http://grafana.example/d/etl-business?var-metric={metric}&var-slice={slice}"

[metrics.views]
label = "Views"
k = 3.5
min_change = 0.15
mention = "@feed_oncall"
"""


@pytest.fixture(scope="module")
def days(stack: None) -> None:
    for i in range(8):
        write_day(START + dt.timedelta(days=i), SPEC)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("PIPELINE_ALERTS_CONFIG", str(path))
    forget_alerts()
    return path


def forget_alerts() -> None:
    """No alert state and no message sent, as if the check never ran (ClickHouse ops.alerts is
    rebuilt from the ledger month by month at the next message)."""
    forget("alerts")
    ensure_tables()
    with transaction() as cur:
        cur.execute("DELETE FROM ops.alert_state")


def outbox() -> list[dict[str, str]]:
    return [json.loads(p.read_text()) for p in sorted(load_settings().paths.outbox.glob("*.json"))]


def test_an_incident_raises_one_alert_then_one_recovery(
    days: None, config: Path, runtime: Path
) -> None:
    start, end = dt.datetime(2024, 4, 8, 11, 0), dt.datetime(2024, 4, 8, 18, 0)
    assert luigi.build(
        [AlertReplay(start=start, end=end)], local_scheduler=True, log_level="WARNING"
    )
    rows = ClickHouse().query("ops/alerts_between", start=f"{start}", end=f"{end}")
    assert [(r["kind"], r["metric"], r["slice"]) for r in rows] == [
        ("alert", "views", "all"),
        ("recovery", "views", "all"),
    ]
    alert, recovery = rows
    assert alert["slot"] == "2024-04-08 14:00:00" and alert["change"] < -0.5
    # The incident ends at 15:30; the recovery waits until the metric has stayed inside its
    # band for the detector's calm time (2 h), so a flapping metric is not declared recovered.
    assert "2024-04-08 15:30:00" <= recovery["slot"] <= "2024-04-08 17:45:00"
    # One message each: the chart with the text as its caption.
    texts = photos = outbox()
    assert len(texts) == 2 and all("photo" in m for m in texts)
    first = texts[0]["text"]
    assert first.startswith("🚨 Metric Views in slice all at 2024-04-08 14:00 UTC.")
    assert "Deviation -" in first and "(expected band " in first
    assert "Chart: http://grafana.example/d/etl-business?var-metric=views&var-slice=all" in first
    assert "Dashboard: http://grafana.example/d/etl-business" in first and "@feed_oncall" in first
    assert texts[1]["text"].startswith("✅ Metric Views in slice all is back to normal")
    assert "deviation " in texts[1]["text"] and "(band " in texts[1]["text"]
    assert Path(photos[0]["photo"]).read_bytes().startswith(b"\x89PNG")
    # The same slots again: already decided, nothing is sent or recorded twice.
    for slot in (dt.datetime(2024, 4, 8, 14, 0), dt.datetime(2024, 4, 8, 15, 30)):
        assert check_slot(pd.Timestamp(slot), load_config(config)) == []
    assert len(ClickHouse().query("ops/alerts_between", start=f"{start}", end=f"{end}")) == 2
    assert [(m["kind"], m["status"]) for m in ledger("alerts")] == [
        ("alert", "sent"),
        ("recovery", "sent"),
    ]
