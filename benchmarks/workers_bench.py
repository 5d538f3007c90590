"""Files per second through the inbox with 1, 2 and 4 workers, two ways:

- N sweeps side by side against one luigid: N ``luigi --module pipeline.inbox inbox.ProcessInbox``
  processes, as cron on N hosts starts them (one worker each); luigid hands each batch to one
  of them and its ``[resources] postgres_loads`` caps the loads at once (4, as in production);
- one command with ``--workers N``: Luigi's N processes on one host, the local scheduler.

Each run lands the same files (weekly sales files of ``ROWS`` rows) in an empty inbox and ends
when every file is archived; the rows in PostgreSQL are checked. What it shows on this machine
(2 cores): more workers than cores only add contention; on several hosts each adds its cores.

    python -m benchmarks inbox-workers                 # 1, 2 and 4 workers
    python -m benchmarks inbox-workers --workers 1 2   # a subset

Everything runs in the benchmarks' own database, Redis db and a temporary runtime folder
(``benchmarks.common``), with a luigid of its own on a free port.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import benchmark

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FILES = 240
ROWS = 2_000
BATCH = 8  # files per ingestion task: 30 batches for 1 to 4 workers to share


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _luigid(folder: Path) -> Iterator[str]:
    """A central scheduler of the benchmark's own (production's load slots: 4)."""
    port = _free_port()
    config = folder / "luigid.cfg"
    config.write_text(
        f"[scheduler]\nstate_path = {folder / 'state.pickle'}\nworker_disconnect_delay = 10\n"
        "[resources]\npostgres_loads = 4\n"
    )
    server = subprocess.Popen(
        [str(BIN / "luigid"), "--address", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "LUIGI_CONFIG_PATH": str(config)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("the benchmark's luigid did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def _reset(runtime: Path) -> None:
    """An empty inbox, no flags, no sales rows."""
    from config.settings import load_settings
    from pipeline.systems import postgres
    from pipeline.systems.redis import connect

    with postgres.transaction() as cur:
        postgres.run(cur, "benchmarks/reset_tables")
    connect(load_settings().redis).flushdb()
    for folder in ("flags", "work", "archive", "quarantine", "inbox", "outbox"):
        shutil.rmtree(runtime / folder, ignore_errors=True)


def _land(inbox: Path) -> None:
    """``FILES`` sales files of ``ROWS`` rows each, distinct ids, old enough to be taken."""
    inbox.mkdir(parents=True, exist_ok=True)
    header = "sale_id,customer_id,product_id,quantity,sale_date,sale_amount,region\n"
    regions = ("north", "south", "east", "west")
    for i in range(FILES):
        week, region = divmod(i, 4)
        name = f"sales_{2001 + week // 52}_w{week % 52 + 1:02d}_{regions[region]}.csv"
        first = i * ROWS + 1
        lines = [
            f"{sale},{sale % 9973 + 1},{sale % 1999 + 1},{sale % 5 + 1},2024-01-0{sale % 7 + 1},"
            f"{sale % 500 + 1}.{sale % 100:02d},{regions[region].title()}\n"
            for sale in range(first, first + ROWS)
        ]
        (inbox / name).write_text(header + "".join(lines))
    old = time.time() - 60
    for path in inbox.iterdir():
        os.utime(path, (old, old))


def _sweep(extra: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [str(BIN / "luigi"), "--module", "pipeline.inbox", "inbox.ProcessInbox"]
    return subprocess.Popen(
        [*command, "--batch-size", str(BATCH), "--min-age-s", "0", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _timed(processes: list[subprocess.Popen[bytes]], runtime: Path) -> float:
    """Seconds until every process ended, once every file is archived with its rows."""
    from flags.ledger import Ledger
    from pipeline.systems import postgres

    began = time.perf_counter()
    codes = [p.wait(900) for p in processes]
    seconds = time.perf_counter() - began
    if any(codes):
        raise RuntimeError(f"a sweep exited {codes} (its log: {runtime}/logs/)")
    flags = list(Ledger.from_settings().store.scan())
    statuses = {f["status"] for f in flags}
    with postgres.transaction() as cur:
        rows = int(postgres.fetch_value(cur, "benchmarks/count_sales"))
    if len(flags) != FILES or statuses != {"archived"} or rows != FILES * ROWS:
        raise RuntimeError(
            f"{len(flags)} flags ({sorted(statuses)}), {rows:,} rows: expected {FILES} archived"
            f" files and {FILES * ROWS:,} rows"
        )
    return seconds


def _cell(entry: dict[str, float]) -> str:
    return f"{entry['seconds']:7.1f} s {entry['files_per_s']:9.1f} files/s"


@benchmark("inbox-workers")
def inbox_workers(args: argparse.Namespace) -> dict[str, object]:
    from benchmarks.sales_bench import _isolate

    with tempfile.TemporaryDirectory(prefix="inbox-workers-") as tmp:
        folder = Path(tmp)
        runtime = folder / "runtime"
        _isolate(runtime)
        env = {k: v for k, v in os.environ.items() if k != "PIPELINE_CRASH_AT"}
        env["LUIGI_CONFIG_PATH"] = str(ROOT / "luigi.cfg")  # production's worker settings
        print(
            f"\nInbox throughput: {FILES} files of {ROWS:,} rows, batches of {BATCH};"
            f" this machine has {os.cpu_count()} cores"
        )
        print(f"  {'workers':>7}   {'N sweeps, one luigid':>26}   {'one command --workers N':>26}")
        sweeps: dict[str, dict[str, float]] = {}
        command: dict[str, dict[str, float]] = {}
        with _luigid(folder) as url:
            for n in args.workers:
                _reset(runtime)
                _land(runtime / "inbox")
                seconds = _timed(
                    [_sweep(["--scheduler-url", url, "--workers", "1"], env) for _ in range(n)],
                    runtime,
                )
                sweeps[str(n)] = {"seconds": round(seconds, 3), "files_per_s": FILES / seconds}
                _reset(runtime)
                _land(runtime / "inbox")
                seconds = _timed([_sweep(["--local-scheduler", "--workers", str(n)], env)], runtime)
                command[str(n)] = {"seconds": round(seconds, 3), "files_per_s": FILES / seconds}
                print(f"  {n:>7}   {_cell(sweeps[str(n)])}   {_cell(command[str(n)])}", flush=True)
    for table in (sweeps, command):
        for entry in table.values():
            entry["files_per_s"] = round(entry["files_per_s"], 2)
    return {
        "files": FILES,
        "rows_per_file": ROWS,
        "batch_size": BATCH,
        "cores": os.cpu_count(),
        "sweeps_against_luigid": sweeps,
        "one_command": command,
    }
