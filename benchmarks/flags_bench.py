"""Flags: writing 10,000 flags, listing by status through Redis versus scanning the JSON files,
and rebuilding the mirror (reindex) for 10,000 and 100,000 flags.

Runs on the local stack's Redis, the benchmarks' db (``common.REDIS_DB``: never the demo's or a
test session's), and a temporary flags folder.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

from benchmarks.common import REDIS_DB, benchmark
from config.settings import load_settings
from flags import document as doc
from flags.ledger import Ledger
from flags.mirror import RedisMirror
from flags.store import FlagStore
from pipeline.systems.redis import connect

BENCH_DB = int(REDIS_DB)


def _args(i: int) -> dict[str, object]:
    digest = hashlib.sha256(f"bench file {i}".encode()).hexdigest()
    return {
        "dataset": ("sales", "crm", "telemetry")[i % 3],
        "path": f"/inbox/f{i}.csv",
        "name": f"f{i}.csv",
        "size": 1000 + i,
        "sha256": digest,
    }


def _populate(ledger: Ledger, n: int) -> float:
    began = time.perf_counter()
    for i in range(n):
        fid = ledger.register(**_args(i))["file_id"]
        if i % 4 == 0:
            ledger.advance(fid, doc.VALIDATED)
    return time.perf_counter() - began


@benchmark("flags")
def flags_bench(args: argparse.Namespace) -> None:
    settings = load_settings()
    client = connect(settings.redis.__class__(**{**settings.redis.__dict__, "db": BENCH_DB}))
    with tempfile.TemporaryDirectory(prefix="flags-bench-") as tmp:
        root = Path(tmp)
        client.flushdb()
        mirror = RedisMirror(client)
        durable = Ledger(FlagStore(root / "durable", mirror), mirror)
        n = 10_000
        write_s = _populate(durable, n)
        writes = n + n // 4
        print(f"\nFlags: write {n:,} flags ({writes:,} writes: register, and validate for 1 in 4)")
        print(
            f"  JSON (fsync file + folder) + Redis mirror  {write_s:8.3f} s   "
            f"{writes / write_s:8.0f} writes/s   {write_s / writes * 1e3:.3f} ms/write"
        )

        client.flushdb()
        fast = Ledger(FlagStore(root / "nofsync", mirror, durable=False), mirror)
        nofsync_s = _populate(fast, n)
        print(
            f"  same without fsync (the durability cost)   {nofsync_s:8.3f} s   "
            f"fsync costs {write_s / nofsync_s:.1f}x"
        )

        json_only = Ledger(fast.store, None)
        t0 = time.perf_counter()
        via_redis, source = fast.list(status=doc.VALIDATED)
        redis_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        via_json, _ = json_only.list(status=doc.VALIDATED)
        json_s = time.perf_counter() - t0
        assert source == "redis" and len(via_redis) == len(via_json) == n // 4
        t0 = time.perf_counter()
        fast.counts()
        counts_s = time.perf_counter() - t0
        print(f"\nFlags: list {n // 4:,} of {n:,} by status")
        print(f"  scanning the JSON files (baseline)         {json_s:8.3f} s")
        speedup = json_s / redis_s
        print(f"  through the Redis indexes {'':16} {redis_s:8.3f} s   {speedup:6.1f}x faster")
        print(f"  counts by dataset x status (Redis)         {counts_s * 1e3:8.2f} ms")

        print("\nFlags: reindex (rebuild the Redis mirror from JSON)")
        for size in (10_000, 100_000):
            store = FlagStore(root / f"r{size}", None, durable=False)
            if size == 10_000:
                store = fast.store
            else:
                ledger = Ledger(store, None)
                _populate(ledger, size)
            client.flushdb()
            result = Ledger(store, mirror).reindex()
            assert result["mirrored"] == size
            print(
                f"  {size:>7,} flags  {result['seconds']:8.3f} s   "
                f"{size / result['seconds']:8.0f} flags/s"
            )
        client.flushdb()
