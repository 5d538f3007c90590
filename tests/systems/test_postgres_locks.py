"""Advisory locks (``pipeline.systems.postgres.advisory_lock``) on the real server: taken on the
process's own session when it is between transactions (no login per lock), without changing that
session's lock_timeout, released at the block's end; a second lock meanwhile takes a session of
its own (so a second hold of the same name waits, as in another process); a holder killed by
SIGKILL loses its lock with its session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.systems import postgres

ROOT = Path(__file__).resolve().parents[2]


def _backend() -> int:
    """The PostgreSQL backend of this process's own session."""
    with postgres.transaction() as cur:
        return int(postgres.fetch_value(cur, "session/backend_pid"))


def _holders(name: str) -> list[int]:
    """The backends holding the advisory lock ``name`` (seen from a separate session)."""
    conn = postgres.connect()
    try:
        with conn.cursor() as cur:
            postgres.run(cur, "session/advisory_lock_holders", {"key": postgres.lock_key(name)})
            return sorted(int(row[0]) for row in cur.fetchall())
    finally:
        conn.close()


@pytest.mark.integration
def test_a_lock_is_held_on_the_process_session_and_released_after(stack: None) -> None:
    own = _backend()
    with postgres.transaction() as cur:
        postgres.run(cur, "session/show_lock_timeout")
        before = cur.fetchone()[0]
    with postgres.advisory_lock("test lock on the own session", 5):
        assert _holders("test lock on the own session") == [own]
        with postgres.transaction() as cur:  # the block's work, on the same session
            postgres.run(cur, "session/show_lock_timeout")
            assert cur.fetchone()[0] == before, "the lock's wait limit stayed in its transaction"
        # Another lock meanwhile: another session, so the same name would wait as elsewhere.
        with postgres.advisory_lock("test second lock", 5):
            second = _holders("test second lock")
            assert len(second) == 1 and second != [own]
    assert _holders("test lock on the own session") == []
    assert _holders("test second lock") == []
    assert _backend() == own, "the session goes on after the lock"


@pytest.mark.integration
def test_a_lock_taken_inside_a_transaction_uses_a_session_of_its_own(stack: None) -> None:
    own = _backend()
    with postgres.transaction() as cur:
        postgres.run(cur, "session/ping")
        with postgres.advisory_lock("test lock in a transaction", 5):
            holders = _holders("test lock in a transaction")
            assert len(holders) == 1 and holders != [own]
    assert _holders("test lock in a transaction") == []


HOLD_AND_DIE = """
import os, signal
from pipeline.systems import postgres
with postgres.transaction() as cur:
    postgres.run(cur, "session/ping")
with postgres.advisory_lock("test lock of a killed holder", 5):
    print("held", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.integration
def test_a_holder_killed_by_sigkill_loses_its_lock(stack: None) -> None:
    child = subprocess.run(
        [sys.executable, "-c", HOLD_AND_DIE],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signal.SIGKILL and "held" in child.stdout, child.stderr
    began = time.monotonic()
    with postgres.advisory_lock("test lock of a killed holder", 10):
        pass
    assert time.monotonic() - began < 5
