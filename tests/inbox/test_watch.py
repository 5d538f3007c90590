"""The watcher: a file landing in the inbox starts its chain within seconds; running it beside
the cron sweep processes each file once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import luigi
import pytest

from flags import document as doc
from pipeline.inbox.chain import Inbox
from pipeline.inbox.tasks import ProcessInbox
from tests.fixtures.inbox import csv_text, pg_rows, sales_rows

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_a_landing_file_is_processed_within_seconds_and_once(inbox: Inbox) -> None:
    watcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.inbox",
            "watch",
            "--local-scheduler",
            "--settle-seconds",
            "0.5",
            "--sweep-every",
            "3600",
            "--stop-after",
            "60",
        ],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # the observer is up
        names = [f"sales_2024_w2{i}_north.csv" for i in range(3)]
        landed = time.monotonic()
        for i, name in enumerate(names):
            tmp = inbox.paths.inbox / f".{name}.tmp"
            tmp.write_text(csv_text(sales_rows(1 + 100 * i, 20)))
            tmp.rename(inbox.paths.inbox / name)  # delivered by rename, as careful senders do
        # The cron sweep runs at the same moment.
        luigi.build([ProcessInbox(min_age_s=0.5)], local_scheduler=True, log_level="WARNING")
        deadline = landed + 20
        while time.monotonic() < deadline:
            flags = inbox.ledger.list()[0]
            if len(flags) == 3 and all(f["status"] == doc.ARCHIVED for f in flags):
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - landed
        flags = inbox.ledger.list()[0]
        assert sorted(f["source"]["name"] for f in flags) == sorted(names), watcher.stderr
        assert all(f["status"] == doc.ARCHIVED for f in flags)
        assert elapsed < 20
        assert len(pg_rows()) == 60  # each file loaded once
    finally:
        watcher.terminate()
        watcher.wait(30)
