"""The flags on the local stack's real Redis (db 15), and on a private Redis that goes down."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.settings import load_settings
from flags import document as doc
from flags.ledger import Ledger
from pipeline.systems.redis import connect
from stack.servers import Redis as RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture
def real_redis(stack: None) -> Iterator[redis.Redis]:
    client = connect(load_settings().redis)
    assert load_settings().redis.db != 0, "tests never flush the demo's db"
    client.flushdb()
    yield client
    client.flushdb()


def _writer(root: str, file_ids: list[str], worker: int) -> None:
    ledger = Ledger.at(Path(root), connect(load_settings().redis))
    for file_id in file_ids:
        ledger.annotate(file_id, f"seen_by_{worker}", True)
        if worker == 0:
            ledger.advance(file_id, doc.VALIDATED)


def test_concurrent_workers_keep_json_and_redis_in_step(
    tmp_path: Path, real_redis: redis.Redis, make_flag_args
) -> None:
    ledger = Ledger.at(tmp_path, real_redis)
    ids = [ledger.register(**make_flag_args(f"file {i}"))["file_id"] for i in range(20)]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), ids, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert ledger.check().clean
    flags, source = ledger.list(status=doc.VALIDATED)
    assert source == "redis" and len(flags) == 20
    for flag in flags:
        assert flag == ledger.get(flag["file_id"])  # the mirror holds the newest revision
        assert {"seen_by_0", "seen_by_1", "seen_by_2"} <= set(flag["details"])
    assert ledger.counts() == {("sales", "validated"): 20}


def test_a_flush_of_redis_loses_nothing(
    tmp_path: Path, real_redis: redis.Redis, make_flag_args
) -> None:
    ledger = Ledger.at(tmp_path, real_redis)
    for i in range(50):
        fid = ledger.register(**make_flag_args(f"f{i}", dataset="sales" if i % 3 else "crm"))[
            "file_id"
        ]
        if i % 5 == 0:
            ledger.fail(fid, stage="validated", error=ValueError("bad"))
    before = ledger.counts()
    real_redis.flushdb()
    assert len(ledger.check().missing_in_redis) == 50
    assert ledger.reindex()["mirrored"] == 50
    assert ledger.check().clean
    assert ledger.counts() == before


@pytest.fixture
def private_redis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    """A Redis of this test's own, on another port, that the test can stop and start."""
    monkeypatch.setenv("PIPELINE_STACK_DIR", str(tmp_path / "stack"))
    monkeypatch.setenv("PIPELINE_REDIS_PORT", "26479")
    monkeypatch.setenv("PIPELINE_REDIS_DB", "0")
    server = RedisServer(load_settings())
    server.start()
    yield server
    server.stop()


def test_redis_down_during_writes(
    tmp_path: Path, private_redis: RedisServer, make_flag_args
) -> None:
    client = connect(load_settings().redis, timeout=0.5)
    ledger = Ledger.at(tmp_path / "flags", client)
    first = [ledger.register(**make_flag_args(f"before {i}"))["file_id"] for i in range(5)]
    assert ledger.check().clean

    private_redis.stop()
    during = [ledger.register(**make_flag_args(f"during {i}"))["file_id"] for i in range(5)]
    for fid in first:
        ledger.advance(fid, doc.VALIDATED)  # the pipeline goes on
    assert all(ledger.store.exists(fid) for fid in during)
    flags, source = ledger.list(status=doc.VALIDATED)
    assert source == "json" and len(flags) == 5

    private_redis.start()
    drift = ledger.check()
    assert drift.stale is not None
    assert sorted(drift.missing_in_redis) == sorted(during)
    assert sorted(drift.behind_in_redis) == sorted(first)
    ledger.reindex()
    assert ledger.check().clean
    assert ledger.counts() == {("sales", "validated"): 5, ("sales", "received"): 5}
    assert ledger.list(status=doc.RECEIVED)[1] == "redis"


def test_the_flags_command_on_the_real_stack(
    runtime: Path, real_redis: redis.Redis, make_flag_args
) -> None:
    import os
    import subprocess
    import sys

    ledger = Ledger.from_settings()
    fid = ledger.register(**make_flag_args(name="hostile name; rm -rf.csv"))["file_id"]
    ledger.fail(fid, stage="validated", error=ValueError("row 7: quantity 'x' is not an integer"))

    def flags(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flags", *args],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    listed = flags("list", "--status", "failed")
    assert listed.returncode == 0, listed.stderr
    assert fid in listed.stdout and "hostile name; rm -rf.csv" in listed.stdout
    assert flags("retry", fid).returncode == 0
    assert ledger.get(fid)["status"] == doc.RECEIVED
    check = flags("check")
    assert check.returncode == 0 and "in step" in check.stdout
