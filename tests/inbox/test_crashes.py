"""Ingestion under real crashes, Redis loss and concurrent sweeps.

A child process runs the real sweep (`luigi --module pipeline.inbox inbox.ProcessInbox`) and
SIGKILLs itself at a named point between two side effects (``pipeline.core.faults``); then the
sweep runs again, sometimes with Redis flushed in between or unreachable for a whole run. After
each story the invariants a user relies on are checked exactly:

- every input file is archived, quarantined with a reason, or a duplicate;
- nothing is left in ``inbox/`` or ``work/`` but lock files;
- PostgreSQL holds exactly the expected rows with exact values, none twice;
- ``flags check`` is clean and the counts (what ``flags counts`` and the metrics show) agree with
  the JSON files.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from config.settings import load_settings
from flags import document as doc
from pipeline.inbox.chain import Inbox
from pipeline.systems.redis import connect
from tests.fixtures.inbox import csv_text, pg_rows, sales_rows

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).parent / "luigi")
# The cron line's command; --no-lock: Luigi's own pid lock would make concurrent sweeps (and this
# suite beside another) exit "already running" instead of sharing the inbox.
SWEEP = [LUIGI, "--module", "pipeline.inbox", "inbox.ProcessInbox", "--local-scheduler"] + [
    "--no-lock",
    "--min-age-s",
    "0",
]

GOOD = {
    "sales_2024_w05_north.csv": (1, 12, "North"),
    "sales_2024_w05_south.csv": (101, 9, "South"),
}
# Every file of the corpus and the status its content calls for.
EXPECTED = {
    "sales_2024_w05_north.csv": doc.ARCHIVED,
    "sales_2024_w05_south.csv": doc.ARCHIVED,
    "sales_2024_w06_north.csv": doc.DUPLICATE,  # the same bytes as the w05 north file
    "sales_2024_w05_west.csv": doc.QUARANTINED,  # every row breaks a rule
    "notes.txt": doc.QUARANTINED,  # no contract matches the name
}


def corpus() -> dict[str, str]:
    files = {name: csv_text(sales_rows(*spec)) for name, spec in GOOD.items()}
    files["sales_2024_w06_north.csv"] = files["sales_2024_w05_north.csv"]
    files["sales_2024_w05_west.csv"] = csv_text(["x,1,1,0,2024-13-40,-5,Nowhere"] * 4)
    files["notes.txt"] = "not a sales file\n"
    return files


def land_all(inbox: Inbox, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = inbox.paths.inbox / name
        tmp = path.with_name(f".{name}.part")
        tmp.write_text(text)
        old = time.time() - 60
        os.utime(tmp, (old, old))
        os.replace(tmp, path)


def sweep(crash_at: str | None = None, env: dict[str, str] | None = None) -> int:
    """The cron sweep as a real process; the return code (-9 when it was killed)."""
    child_env = {**os.environ, **(env or {})}
    child_env.pop("PIPELINE_CRASH_AT", None)
    if crash_at:
        child_env["PIPELINE_CRASH_AT"] = crash_at
    with tempfile.TemporaryFile() as out:
        child = start(child_env, out)
        try:
            return child.wait(180)
        finally:
            end(child)


def start(env: dict[str, str], out: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """A sweep in a process group of its own (with Luigi's helper processes)."""
    return subprocess.Popen(
        SWEEP, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def end(child: subprocess.Popen[bytes]) -> None:
    """Kill what is left of a sweep's process group: a killed sweep's helpers (Luigi's manager
    process) outlive it and would hold its output open."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)


def expected_rows() -> list[tuple[int, str, Decimal]]:
    rows = []
    for first, n, region in GOOD.values():
        for line in sales_rows(first, n, region):
            fields = line.split(",")
            rows.append((int(fields[0]), region, Decimal(fields[5])))
    return sorted(rows)


def assert_invariants(inbox: Inbox) -> None:
    flags = list(inbox.ledger.store.scan())
    by_name = {f["source"]["name"]: f for f in flags}
    assert {name: f["status"] for name, f in by_name.items()} == EXPECTED
    assert len(flags) == len(EXPECTED), "every file once: no flag twice"
    for flag in flags:
        if flag["status"] == doc.QUARANTINED:
            assert (inbox.paths.quarantine / f"{flag['file_id']}.reason.txt").read_text().strip()
            assert Path(flag["details"]["quarantine_path"]).exists()
        else:
            assert Path(flag["details"]["archive_path"]).exists()
    assert list(inbox.paths.inbox.iterdir()) == []
    assert [p.name for p in inbox.paths.work.iterdir()] in ([], [".locks"])
    assert [(r[0], r[1], r[2]) for r in pg_rows()] == expected_rows()
    listed, _ = inbox.ledger.list()  # a query brings the index in step first
    assert sorted(f["file_id"] for f in listed) == sorted(f["file_id"] for f in flags)
    assert inbox.ledger.check().clean
    truth = Counter((f["dataset"], f["status"]) for f in flags)
    assert inbox.ledger.counts() == dict(truth)


CRASH_POINTS = [
    "register.after_flag",
    "register.after_move",
    "register.after_duplicate",
    "flags.after_json@1",
    "flags.after_json@4",
    "flags.after_json@9",
    "validate.after_work_file",
    "transform.after_work_file",
    "load.before_commit",
    "load.after_commit",
    "archive.after_copy",
    "archive.after_flag",
    "quarantine.after_move",
    "quarantine.after_reason",
    "quarantine.after_flag",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_sweep_killed_at_each_boundary_then_rerun_gives_the_exact_result(
    inbox: Inbox, point: str
) -> None:
    land_all(inbox, corpus())
    assert sweep(crash_at=point) == -signal.SIGKILL, f"the sweep never reached {point}"
    assert sweep() == 0
    assert_invariants(inbox)


@pytest.mark.parametrize(
    "point", ["register.after_move", "flags.after_json@6", "load.after_commit"]
)
def test_a_kill_then_a_flushed_redis_then_a_rerun_loses_nothing(inbox: Inbox, point: str) -> None:
    land_all(inbox, corpus())
    assert sweep(crash_at=point) == -signal.SIGKILL
    connect(load_settings().redis).flushdb()
    listed, source = inbox.ledger.list()
    assert listed, "a flushed index is rebuilt, never trusted empty"
    assert sweep() == 0
    assert_invariants(inbox)


def test_a_whole_sweep_without_redis_then_one_with_it_is_exact(inbox: Inbox) -> None:
    land_all(inbox, corpus())
    # Nothing listens on port 1: every index write fails; the JSON files carry the run.
    assert sweep(env={"PIPELINE_REDIS_PORT": "1", "PIPELINE_REDIS_TIMEOUT_S": "0.2"}) == 0
    assert inbox.ledger.store.mirror_stale() is not None
    assert sweep() == 0
    assert_invariants(inbox)
    assert inbox.ledger.store.mirror_stale() is None


def test_sweeps_killed_at_random_moments_while_files_arrive_then_finish_exactly(
    inbox: Inbox,
) -> None:
    files = corpus()
    rng = random.Random(7)
    names = list(files)
    for round_ in range(4):
        land_all(inbox, {n: files[n] for n in names[round_::4]})
        child = start({k: v for k, v in os.environ.items() if k != "PIPELINE_CRASH_AT"})
        time.sleep(rng.uniform(0.8, 2.5))
        child.kill()
        child.wait(30)
        end(child)
        if round_ == 1:
            connect(load_settings().redis).flushdb()
    assert sweep() == 0
    assert_invariants(inbox)


def test_three_sweeps_at_once_process_every_file_once(inbox: Inbox, tmp_path: Path) -> None:
    land_all(inbox, corpus())
    logs = [tmp_path / f"sweep-{n}.log" for n in range(3)]
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_CRASH_AT"}
    children = [start(env, log.open("wb")) for log in logs]
    try:
        codes = [child.wait(180) for child in children]
    finally:
        for child in children:
            end(child)
    assert codes == [0, 0, 0], "\n".join(log.read_text()[-3000:] for log in logs)
    assert_invariants(inbox)
