"""Many workers, one inbox: sweeps started at once against one luigid share the files, none is
processed twice, and a worker killed mid-file has its files finished by the others."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flags import document as doc
from pipeline.inbox.chain import Inbox
from tests.fixtures.inbox import csv_text, pg_rows, sales_rows

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FILES = 80
ROWS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def luigid(tmp_path: Path) -> Iterator[str]:
    """A central scheduler of the test's own: a dead worker is noticed within seconds."""
    port = free_port()
    config = tmp_path / "luigid.cfg"
    config.write_text(
        "[scheduler]\nretry_delay = 1\nworker_disconnect_delay = 3\n"
        f"state_path = {tmp_path / 'state.pickle'}\n[resources]\npostgres_loads = 2\n"
    )
    server = subprocess.Popen(
        [str(BIN / "luigid"), "--address", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "LUIGI_CONFIG_PATH": str(config)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)


def sweep(scheduler: str, crash_at: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_CRASH_AT"}
    # Production's worker settings: a sweep waits for luigid's load slots (the tests' short
    # keep-alive would make it give up, "not run", while another sweep holds them).
    env["LUIGI_CONFIG_PATH"] = str(ROOT / "luigi.cfg")
    if crash_at:
        env["PIPELINE_CRASH_AT"] = crash_at
    command = [str(BIN / "luigi"), "--module", "pipeline.inbox", "inbox.ProcessInbox"]
    return subprocess.Popen(
        [*command, "--scheduler-url", scheduler, "--batch-size", "8", "--min-age-s", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # with Luigi's helper processes, killed together below
    )


def test_three_sweeps_share_an_inbox_and_finish_a_killed_workers_files(
    inbox: Inbox, land, luigid: str
) -> None:
    for n in range(FILES):
        region = ("North", "South", "East", "West")[n % 4]
        week = 10 + n // 4
        land(
            f"sales_2024_w{week:02d}_{region.lower()}.csv",
            csv_text(sales_rows(1 + n * 100, ROWS, region)),
        )
    victim = sweep(luigid, crash_at="load.after_commit@2")
    time.sleep(1.0)  # the victim gets going first, so it surely reaches its second load
    others = [sweep(luigid) for _ in range(2)]
    try:
        assert victim.wait(180) == -signal.SIGKILL  # killed with a load committed, flag not yet
        codes = [p.wait(300) for p in others]
    finally:
        for child in (victim, *others):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
    assert codes == [0, 0], f"the surviving sweeps exited {codes}"

    flags = list(inbox.ledger.store.scan())
    assert len(flags) == FILES and {f["status"] for f in flags} == {doc.ARCHIVED}
    ids = sorted(r[0] for r in pg_rows())
    assert ids == sorted(1 + n * 100 + i for n in range(FILES) for i in range(ROWS))  # once each
    loaders = {
        entry["pid"] for f in flags for entry in f["history"] if entry.get("to") == doc.LOADED
    }
    assert len(loaders) >= 2, "the loads were shared by at least two processes"
    assert victim.pid in loaders  # it loaded files before it died ...
    finished_by_others = [
        f
        for f in flags
        if any(e.get("pid") == victim.pid for e in f["history"])
        and f["history"][-1].get("pid") != victim.pid
    ]
    assert finished_by_others, "... and the others finished the file it died on"
    assert [p.name for p in inbox.paths.work.iterdir()] in ([], [".locks"])
