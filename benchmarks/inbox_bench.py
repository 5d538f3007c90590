"""Peak memory of an inbox sweep over one big sales file: the chain streams (the file is checked,
transformed and loaded in bounded chunks), so the peak resident set stays about the same whatever
the file's size. The goal: a 1 GB file swept in at most 1 GB of RSS.

    python -m benchmarks inbox-100mb     # in `make bench` (about half a minute)
    python -m benchmarks inbox-1gb       # the 1 GB file (a few minutes; not in the default set)

The sweep runs in a process of its own (``ProcessInbox`` with the local scheduler, one worker, as
cron runs it), so the figure is the sweep's peak alone, read with ``wait4`` when it exits. Ids are
18-digit integers and amounts have three decimal places, so the exact paths (int64 beyond 2**53,
half-up rounding) are the ones measured. The contract's size cap (512 MB for sales) is raised for
the sweep; the 1 GB run also shows the default cap quarantining the file unread.

Everything runs in the benchmarks' own database (``pipeline_bench``), Redis db 5
(``common.REDIS_DB``) and a temporary runtime folder; nothing of the demo's is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import benchmark

MB = 1024 * 1024
FILE_NAME = "sales_2024_w01_north.csv"
GOAL_MB = 1024


def write_sales_file(path: Path, target_bytes: int, rows_per_batch: int = 1_000_000) -> int:
    """A valid sales file of about ``target_bytes`` (streamed: batches of rows by Arrow's CSV
    writer, unquoted, as a plain delivery is); returns the rows written."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(12)
    rows = 0
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    schema = pa.schema(
        [
            ("sale_id", pa.int64()),
            ("customer_id", pa.int64()),
            ("product_id", pa.int64()),
            ("quantity", pa.int64()),
            ("sale_date", pa.date32()),
            ("sale_amount", pa.string()),
            ("region", pa.string()),
        ]
    )
    first_day = np.datetime64("2024-01-01", "D").astype(np.int32)
    path.write_text(",".join(schema.names) + "\n")  # Arrow would quote the names
    with open(path, "ab") as out, pacsv.CSVWriter(out, schema, write_options=options) as writer:
        while path.stat().st_size < target_bytes:
            n = rows_per_batch
            ids = np.arange(rows, rows + n, dtype=np.int64) + 123_456_789_012_345_678
            mills = rng.integers(1, 5_000_000, n)  # amounts in thousandths: rounding matters
            whole = pa.array(mills // 1000).cast(pa.string())
            frac = pc.utf8_lpad(pa.array(mills % 1000).cast(pa.string()), width=3, padding="0")
            amount = pc.binary_join_element_wise(whole, frac, ".")
            batch = pa.record_batch(
                [
                    pa.array(ids),
                    pa.array(rng.integers(1, 150_000, n)),
                    pa.array(rng.integers(1, 2_000, n)),
                    pa.array(rng.integers(1, 10, n)),
                    pa.array(first_day + rng.integers(0, 7, n).astype(np.int32), pa.date32()),
                    amount,
                    pa.array(np.full(n, "North")),
                ],
                schema=schema,
            )
            writer.write_batch(batch)
            rows += n
    return rows


def _sweep_in_child(max_bytes: int) -> dict[str, float | bool]:
    """Run one sweep in a fresh process; its peak RSS (``wait4``) and what it printed."""
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.inbox_bench", "--sweep", str(max_bytes)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"the sweep's process exited {child.returncode}: {out[-2000:]}")
    result: dict[str, float | bool] = json.loads(out.strip().splitlines()[-1])
    result["rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def _sweep(max_bytes: int) -> None:
    """The child: one sweep with the sales contract's size cap at ``max_bytes``."""
    import dataclasses

    import luigi

    from pipeline.inbox.contract import CONTRACTS, SALES
    from pipeline.inbox.tasks import ProcessInbox

    CONTRACTS["sales"] = dataclasses.replace(SALES, max_bytes=max_bytes)
    began = time.perf_counter()
    ok = luigi.build(
        [ProcessInbox(min_age_s=0)], local_scheduler=True, workers=1, log_level="WARNING"
    )
    print(json.dumps({"ok": ok, "seconds": time.perf_counter() - began}))


def _outcome() -> tuple[dict[str, Any], int]:
    """The file's flag and the rows in PostgreSQL."""
    from flags.ledger import Ledger
    from pipeline.systems import postgres

    flags, _ = Ledger.from_settings().list()
    (flag,) = flags
    with postgres.transaction() as cur:
        rows = 0
        if postgres.table_exists(cur, "sales.sales"):
            rows = int(postgres.fetch_value(cur, "benchmarks/count_sales"))
    return flag, rows


def _fresh(runtime: Path) -> None:
    import shutil

    from benchmarks.sales_bench import _reset_tables
    from config.settings import load_settings
    from pipeline.systems.redis import connect

    _reset_tables()
    connect(load_settings().redis).flushdb()
    for folder in ("flags", "work", "archive", "quarantine", "inbox"):
        shutil.rmtree(runtime / folder, ignore_errors=True)
    (runtime / "inbox").mkdir(parents=True)


def inbox_memory(size_mb: int, show_cap: bool) -> None:
    from benchmarks.sales_bench import _isolate

    with tempfile.TemporaryDirectory(prefix="inbox-bench-") as tmp:
        root = Path(tmp)
        runtime = root / "runtime"
        _isolate(runtime)
        source = root / FILE_NAME
        t0 = time.perf_counter()
        rows = write_sales_file(source, size_mb * MB)
        size = source.stat().st_size
        print(
            f"\nInbox sweep of one {size / MB:,.0f} MB sales file ({rows:,} rows;"
            f" {time.perf_counter() - t0:.1f} s to generate), in a process of its own"
        )
        old = time.time() - 60
        if show_cap:
            from pipeline.inbox.contract import SALES

            _fresh(runtime)
            os.link(source, runtime / "inbox" / FILE_NAME)
            os.utime(runtime / "inbox" / FILE_NAME, (old, old))
            capped = _sweep_in_child(SALES.max_bytes)
            flag, _ = _outcome()
            label = f"with the default size cap ({SALES.max_bytes // MB:,} MB): {flag['status']}"
            print(
                f"  {label:<58} {capped['seconds']:7.1f} s   peak RSS {capped['rss_mb']:,.0f} MB"
                " (hashed, never parsed)"
            )
        _fresh(runtime)
        os.link(source, runtime / "inbox" / FILE_NAME)
        os.utime(runtime / "inbox" / FILE_NAME, (old, old))
        result = _sweep_in_child(4 * size)
        flag, loaded = _outcome()
        seconds, rss = float(result["seconds"]), float(result["rss_mb"])
        line = "the sweep: register, validate, transform, COPY, archive"
        print(f"  {line:<58} {seconds:7.1f} s   {size / MB / seconds:6.1f} MB/s")
        stages = ", ".join(
            f"{name} {flag['stages'][name]['duration_s']:.1f} s"
            for name in ("validated", "transformed", "loaded", "archived")
            if name in flag["stages"]
        )
        print(f"    by stage: {stages}")
        print(f"  rows loaded: {loaded:,} of {rows:,}; the file is {flag['status']}")
        verdict = "met" if rss <= GOAL_MB else "NOT met"
        print(
            f"  peak memory (RSS of the sweep's process): {rss:,.0f} MB"
            f"   goal <= {GOAL_MB:,} MB for a 1 GB file: {verdict}",
            flush=True,
        )


@benchmark("inbox-100mb")
def inbox_100mb(args: argparse.Namespace) -> None:
    inbox_memory(100, show_cap=False)


@benchmark("inbox-1gb")
def inbox_1gb(args: argparse.Namespace) -> None:
    """The 1 GB file (by name only, it takes minutes: `python -m benchmarks inbox-1gb`)."""
    inbox_memory(1024, show_cap=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--sweep":
        _sweep(int(sys.argv[2]))
    else:
        sys.exit("usage: python -m benchmarks inbox-100mb | inbox-1gb")
