"""Retention: old rows move to the archive table (never lost, never in both); old archived files
are deleted and their flags say so; a second run changes nothing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import luigi
import pytest

from pipeline.inbox.chain import Inbox
from pipeline.inbox.tasks import ProcessInbox
from pipeline.retention.tasks import ApplyRetention
from pipeline.systems.postgres import transaction
from tests.fixtures.inbox import csv_text, pg_rows, sales_rows

pytestmark = pytest.mark.integration


def archive_counts() -> tuple[int, int]:
    with transaction() as cur:
        cur.execute("SELECT count(*) FROM sales.sales")
        hot = cur.fetchone()[0]
        cur.execute("SELECT to_regclass('sales.sales_archive') IS NOT NULL")
        if not cur.fetchone()[0]:
            return hot, 0
        cur.execute("SELECT count(*) FROM sales.sales_archive")
        return hot, cur.fetchone()[0]


def test_old_rows_and_old_archives_go_and_nothing_is_lost(inbox: Inbox, land) -> None:
    land("sales_2024_w01_north.csv", csv_text(sales_rows(1, 30)))  # dates 2024-01-01..07
    assert luigi.build([ProcessInbox(min_age_s=0)], local_scheduler=True, log_level="WARNING")
    (flag,) = inbox.ledger.list()[0]
    archived = Path(flag["details"]["archive_path"])
    # Pretend the archive copy is two years old: move it into an old day folder.
    old_dir = inbox.paths.archive / "2022" / "01" / "03"
    old_dir.mkdir(parents=True)
    archived.rename(old_dir / archived.name)

    day = dt.date(2024, 1, 5)  # rows before 2024-01-04 (hot_days=1) are old
    task = ApplyRetention(day=day, hot_days=1, archive_days=365)
    assert luigi.build([task], local_scheduler=True, log_level="WARNING")
    counts = json.loads(Path(task.output().path).read_text())
    hot, cold = archive_counts()
    assert hot + cold == 30 and cold == counts["rows_moved"]["sales.sales"] > 0
    with transaction() as cur:
        cur.execute("SELECT max(sale_date) FROM sales.sales_archive")
        assert cur.fetchone()[0] < dt.date(2024, 1, 4)
        cur.execute("SELECT min(sale_date) FROM sales.sales")
        assert cur.fetchone()[0] >= dt.date(2024, 1, 4)
    assert counts["files_deleted"] == 1 and not (old_dir / archived.name).exists()
    assert (
        inbox.ledger.get(flag["file_id"])["details"]["archive_deleted_on"]
        == dt.date.today().isoformat()
    )

    again = ApplyRetention(day=day + dt.timedelta(days=1), hot_days=2, archive_days=365)
    assert luigi.build([again], local_scheduler=True, log_level="WARNING")
    assert json.loads(Path(again.output().path).read_text())["files_deleted"] == 0
    assert sum(archive_counts()) == 30 and len(pg_rows()) == hot
