"""Event-driven file ingestion: a file landing in the inbox is the event.

Two triggers share one path: ``ProcessInbox`` (cron's sweep) and the ``watch`` process
(file-system events). Both register ready files and run each file's chain, every step recorded
in the file's flag::

    register (sha256; same bytes seen before -> duplicate, archived, not loaded)
      -> validate against the contract (bad rows -> quarantine/<id>.rejects.csv;
                                        unusable or over the threshold -> the file is quarantined)
      -> transform (pure; de-duplication by key)
      -> load to PostgreSQL (COPY, one transaction with a load marker: a rerun never doubles rows)
      -> archive the original, gzip, under archive/YYYY/MM/DD/ -> archived

A file is moved from the inbox into ``work/<file id>/`` when registered, so neither trigger sees
it twice; a per-file lock keeps two processes off the same file. Nothing is deleted before its
archive copy is durable; a quarantined file is kept whole with its reason.

    luigi --module pipeline.inbox ProcessInbox                  # the sweep (cron, every 5 min)
    python -m pipeline.inbox watch                              # the watcher (a service)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import gzip
import hashlib
import logging
import math
import os
import re
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import luigi
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from config.settings import Paths, load_settings
from flags import document as doc
from flags.ledger import Ledger
from flags.store import FlagNotFound, fsync_dir
from monitoring.logs import context as log_context
from monitoring.metrics import record_rows
from pipeline.core.tasks import PipelineTask
from pipeline.inbox.contract import CONTRACTS, Contract, contract_for
from pipeline.inbox.transform import transform
from pipeline.inbox.validate import FileRejected, check, describe_rejects, reject_share
from pipeline.systems.postgres import (
    copy_csv,
    ensure_marker_table,
    marker_rows,
    serialize_ddl,
    summarize_brin,
    transaction,
    write_marker,
)

log = logging.getLogger(__name__)

UNKNOWN_DATASET = "unknown"
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")
MAX_AUTOMATIC_ATTEMPTS = 5


# -- names -------------------------------------------------------------------------------------
def display_name(raw: str) -> str:
    """A file name as text that can always be stored and shown: undecodable bytes as \\xNN."""
    return os.fsencode(raw).decode("utf-8", "backslashreplace")


def safe_name(raw: str) -> str:
    """A file name reduced to characters that are safe anywhere (archive and quarantine paths)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", display_name(raw)).lstrip(".")
    return cleaned[:120] or "unnamed"


def sha256_of(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


@contextlib.contextmanager
def file_lock(path: Path, blocking: bool = True) -> Iterator[bool]:
    """An exclusive flock; with ``blocking=False`` yields False when someone else holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def durable_move(source: Path, target: Path) -> None:
    """Rename within one file system, then make the rename itself durable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, target)
    fsync_dir(target.parent)
    fsync_dir(source.parent)


# -- the inbox ---------------------------------------------------------------------------------
def ready_files(inbox: Path, min_age_s: float = 10.0, now: float | None = None) -> list[Path]:
    """Entries of the inbox that are complete: not hidden or temporary, and unchanged for
    ``min_age_s`` (a file still being written keeps changing). Links and other non-regular
    entries are returned at once: they are quarantined without being read."""
    if not inbox.is_dir():
        return []
    moment = time.time() if now is None else now
    found: list[Path] = []
    with os.scandir(os.fsencode(inbox)) as entries:
        for entry in entries:
            name = os.fsdecode(entry.name)
            if name.startswith(".") or name.endswith(IGNORED_SUFFIXES):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # taken by another worker a moment ago
            if stat.S_ISDIR(info.st_mode):
                continue
            if stat.S_ISREG(info.st_mode) and moment - info.st_mtime < min_age_s:
                continue
            found.append(inbox / name)
    return sorted(found)


@dataclass
class Inbox:
    """The file-side operations of ingestion, on one runtime folder and one ledger."""

    paths: Paths
    ledger: Ledger

    @classmethod
    def from_settings(cls) -> Inbox:
        settings = load_settings()
        settings.paths.ensure()
        return cls(settings.paths, Ledger.from_settings(settings))

    def work_dir(self, file_id: str) -> Path:
        return self.paths.work / file_id

    def lock_path(self, key: str) -> Path:
        return self.paths.work / ".locks" / f"{key}.lock"

    # -- register -----------------------------------------------------------------------------
    def register(self, path: Path) -> str | None:
        """Take one inbox entry into the pipeline; return its flag id (None if it vanished)."""
        key = hashlib.sha1(os.fsencode(path.name)).hexdigest()
        with file_lock(self.lock_path(f"inbox-{key}")):
            try:
                info = path.lstat()
            except FileNotFoundError:
                return None  # the other trigger took it
            if not stat.S_ISREG(info.st_mode):
                return self._register_not_regular(path, info)
            sha, size = sha256_of(path)
            found = contract_for(path.name)
            dataset = found[0].dataset if found else UNKNOWN_DATASET
            file_id, original = self._allocate(sha, path)
            work_path = self.work_dir(file_id) / safe_name(path.name)
            if not self.ledger.store.exists(file_id):
                self.ledger.register(
                    dataset=dataset,
                    path=str(work_path),
                    name=display_name(path.name),
                    size=size,
                    sha256=sha,
                    arrival=int(file_id.partition("-")[2] or 0),
                    note=f"from {display_name(str(path))}",
                )
            durable_move(path, work_path)
        log.info("registered %s as %s", display_name(path.name), file_id)
        if original is not None:
            self.ledger.mark_duplicate(file_id, original)
            self.process(file_id)  # archives it; never loaded twice
        elif found is None:
            reason = f"no dataset contract matches the file name {display_name(path.name)!r}"
            self.quarantine(file_id, reason)
        return file_id

    def _allocate(self, sha: str, path: Path) -> tuple[str, str | None]:
        """The id for this arrival, and the original's id if these bytes were seen before.

        A flag still ``received`` for the same name whose work file is missing is this very file
        after a crash between flag and move: it is resumed, not counted twice."""
        base = doc.file_id_for(sha)
        arrival = 0
        while True:
            candidate = doc.file_id_for(sha, arrival)
            try:
                flag = self.ledger.get(candidate)
            except FlagNotFound:
                return candidate, (base if arrival else None)
            if (
                flag["status"] == doc.RECEIVED
                and flag["source"]["name"] == display_name(path.name)
                and not Path(flag["source"]["path"]).exists()
            ):
                return candidate, flag["duplicate_of"]
            arrival += 1

    def _register_not_regular(self, path: Path, info: os.stat_result) -> str:
        """Links and other non-regular entries are never opened: the entry itself is quarantined."""
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(path)
            what = f"symbolic link to {display_name(target)}: links are never followed"
            identity = b"symlink\0" + os.fsencode(target)
        else:
            what = f"not a regular file (mode {stat.filemode(info.st_mode)}): never opened"
            identity = b"special\0" + os.fsencode(path.name) + str(info.st_ino).encode()
        sha = hashlib.sha256(identity + os.fsencode(path.name)).hexdigest()
        file_id, _ = self._allocate(sha, path)
        target_path = self.work_dir(file_id) / safe_name(path.name)
        if not self.ledger.store.exists(file_id):
            self.ledger.register(
                dataset=UNKNOWN_DATASET,
                path=str(target_path),
                name=display_name(path.name),
                size=0,
                sha256=sha,
                note=what,
            )
        durable_move(path, target_path)
        self.quarantine(file_id, what)
        return file_id

    # -- quarantine and archive ---------------------------------------------------------------
    def quarantine(self, file_id: str, reason: str) -> None:
        """Keep the whole file, with its reason beside it; the flag says quarantined."""
        flag = self.ledger.get(file_id)
        source = Path(flag["source"]["path"])
        target = self.paths.quarantine / f"{file_id}__{source.name}"
        if source.exists() or source.is_symlink():
            durable_move(source, target)
        (self.paths.quarantine / f"{file_id}.reason.txt").write_text(
            reason + "\n", encoding="utf-8"
        )
        with contextlib.suppress(OSError):
            self.work_dir(file_id).rmdir()
        if flag["status"] == doc.FAILED:
            flag = self.ledger.retry(file_id, note="quarantining after a failure")
        self.ledger.advance(
            file_id, doc.QUARANTINED, note=reason, details={"quarantine_path": str(target)}
        )
        log.warning("quarantined %s: %s", file_id, reason)

    def archive(self, file_id: str) -> str:
        """gzip the original under archive/YYYY/MM/DD/, durably, then remove the work copy."""
        flag = self.ledger.get(file_id)
        source = Path(flag["source"]["path"])
        day = dt.datetime.fromisoformat(flag["created_at"])
        target = self.paths.archive / f"{day:%Y/%m/%d}" / f"{file_id}__{source.name}.gz"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            with open(source, "rb") as raw, open(tmp, "wb") as out:
                with gzip.GzipFile(
                    filename=source.name, mode="wb", fileobj=out, mtime=0, compresslevel=6
                ) as gz:  # gzip(1)'s default: 9 takes 2.4x the time for 6% less
                    shutil.copyfileobj(raw, gz, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
            fsync_dir(target.parent)
        # The copy is durable: only now may the work copy go.
        shutil.rmtree(self.work_dir(file_id), ignore_errors=True)
        return str(target)

    # -- the chain ----------------------------------------------------------------------------
    def process(self, file_id: str) -> str:
        """Run the file's chain from wherever its flag says it is; return its final status."""
        with log_context(file_id=file_id):
            return self._process(file_id)

    def _process(self, file_id: str) -> str:
        with file_lock(self.lock_path(f"file-{file_id}"), blocking=False) as mine:
            if not mine:
                log.info("%s is being processed by another worker", file_id)
                return self.ledger.get(file_id)["status"]
            flag = self.ledger.get(file_id)
            if flag["status"] == doc.FAILED:
                if flag["attempts"] >= MAX_AUTOMATIC_ATTEMPTS:
                    return doc.FAILED  # needs a person: `flags retry`
                self.ledger.retry(file_id, note="automatic retry by the next run")
            while True:
                flag = self.ledger.get(file_id)
                status = flag["status"]
                if status in doc.SETTLED:
                    if status == doc.DUPLICATE and "archive_path" not in flag["details"]:
                        self.ledger.annotate(file_id, "archive_path", self.archive(file_id))
                    return str(status)
                step = STEPS[status]
                began = time.perf_counter()
                try:
                    step(self, flag, began)
                except Exception as exc:
                    self.ledger.fail(file_id, stage=NEXT[status], error=exc)
                    raise

    def contract(self, flag: dict[str, Any]) -> Contract:
        return CONTRACTS[flag["dataset"]]

    def _validate(self, flag: dict[str, Any], began: float) -> None:
        file_id = flag["file_id"]
        contract = self.contract(flag)
        data = Path(flag["source"]["path"]).read_bytes()
        try:
            checked = check(data, contract)
        except FileRejected as exc:
            self.quarantine(file_id, f"{flag['source']['name']}: {exc}")
            return
        details: dict[str, Any] = {}
        if len(checked.rejects):
            rejects = self.paths.quarantine / f"{file_id}.rejects.csv"
            tmp = rejects.with_name(f".{rejects.name}.tmp")
            checked.rejects.to_csv(tmp, index=False)
            os.replace(tmp, rejects)
            details["rejects_path"] = str(rejects)
        if reject_share(checked) > contract.reject_threshold:
            self.quarantine(
                file_id,
                f"over the reject threshold {contract.reject_threshold:.0%}: "
                + describe_rejects(checked, flag["source"]["name"]),
            )
            return
        checked.good.to_pickle(self.work_dir(file_id) / "valid.pkl")
        record_rows("inbox", contract.dataset, read=checked.rows_in, rejected=checked.rows_rejected)
        self.ledger.advance(
            file_id,
            doc.VALIDATED,
            rows_in=checked.rows_in,
            rows_out=len(checked.good),
            rows_rejected=checked.rows_rejected,
            duration_s=round(time.perf_counter() - began, 6),
            note=describe_rejects(checked, flag["source"]["name"])
            if len(checked.rejects)
            else None,
            details=details,
        )

    def _transform(self, flag: dict[str, Any], began: float) -> None:
        file_id = flag["file_id"]
        valid = self.work_dir(file_id) / "valid.pkl"
        if not valid.exists():  # lost work file (e.g. a cleaned work folder): validate again
            self.ledger.reset(file_id, doc.RECEIVED, note="validated rows missing: validate again")
            return
        good: pd.DataFrame = pd.read_pickle(valid)
        result = transform(good, self.contract(flag))
        frame = result.frame.assign(file_id=file_id)
        clean = self.work_dir(file_id) / "clean.csv"
        tmp = clean.with_name(".clean.csv.tmp")
        write_csv(frame, tmp)
        os.replace(tmp, clean)
        self.ledger.advance(
            file_id,
            doc.TRANSFORMED,
            rows_in=len(good),
            rows_out=len(frame),
            rows_rejected=0,
            duration_s=round(time.perf_counter() - began, 6),
            note=f"{result.duplicates_removed} duplicate key(s) removed"
            if result.duplicates_removed
            else None,
        )

    def _load(self, flag: dict[str, Any], began: float) -> None:
        file_id = flag["file_id"]
        contract = self.contract(flag)
        clean = self.work_dir(file_id) / "clean.csv"
        # DDL in its own short transaction: inside the load it would take locks that deadlock
        # with parallel loads of other files.
        with transaction() as cur:
            ensure_marker_table(cur)
            ensure_table(cur, contract)
        copied = 0
        with transaction() as cur:
            # Committed before a crash, the flag just did not hear of it: take the marker's count.
            # Without a marker the file has no rows here: they commit together or not at all
            # (and the key's primary key refuses any row loaded some other way).
            rows = marker_rows(cur, contract.pg_table, file_id)
            if rows is None:
                if not clean.exists():
                    raise FileNotFoundError(
                        f"{clean}: transformed rows missing; `flags reset {file_id} --to validated`"
                    )
                with open(clean, encoding="utf-8") as handle:
                    rows = copy_csv(cur, contract.pg_table, [*contract.names, "file_id"], handle)
                write_marker(cur, contract.pg_table, file_id, rows)
                copied = rows
        if copied:  # counted once committed, and not again for a recovered load
            record_rows("inbox", contract.dataset, written=copied)
        with transaction() as cur:
            summarize_brin(cur, contract.pg_table)
        self.ledger.advance(
            file_id,
            doc.LOADED,
            rows_in=rows,
            rows_out=rows,
            rows_rejected=0,
            duration_s=round(time.perf_counter() - began, 6),
            details={"table": contract.pg_table},
        )

    def _archive(self, flag: dict[str, Any], began: float) -> None:
        path = self.archive(flag["file_id"])
        self.ledger.advance(
            flag["file_id"],
            doc.ARCHIVED,
            duration_s=round(time.perf_counter() - began, 6),
            details={"archive_path": path},
        )

    def pending(self, dataset: str | None = None) -> list[str]:
        """Flags whose chain has not finished (a crash, a failure to retry)."""
        ids: list[str] = []
        for status in (doc.RECEIVED, doc.VALIDATED, doc.TRANSFORMED, doc.LOADED, doc.FAILED):
            flags, _ = self.ledger.list(status=status, dataset=dataset)
            ids.extend(
                f["file_id"]
                for f in flags
                if f["status"] != doc.FAILED or f["attempts"] < MAX_AUTOMATIC_ATTEMPTS
            )
        # A duplicate is archived right after registration; a crash in between leaves this.
        duplicates, _ = self.ledger.list(status=doc.DUPLICATE, dataset=dataset)
        ids.extend(f["file_id"] for f in duplicates if "archive_path" not in f["details"])
        return sorted(set(ids))


STEPS = {
    doc.RECEIVED: Inbox._validate,
    doc.VALIDATED: Inbox._transform,
    doc.TRANSFORMED: Inbox._load,
    doc.LOADED: Inbox._archive,
}
NEXT = {
    doc.RECEIVED: doc.VALIDATED,
    doc.VALIDATED: doc.TRANSFORMED,
    doc.TRANSFORMED: doc.LOADED,
    doc.LOADED: doc.ARCHIVED,
}


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Rows for ``COPY … CSV HEADER`` by Arrow's writer: a null is an empty field, an empty
    string a quoted one (pandas' writer is ~10x slower on a sales file)."""
    pacsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), str(path))


def ensure_table(cur: Any, contract: Contract) -> None:
    """The dataset's table, from its contract: its columns, the file each row came from."""
    columns = ", ".join(
        f"{c.name} {c.pg_type}{'' if c.nullable else ' NOT NULL'}" for c in contract.columns
    )
    key = ", ".join(contract.key)
    name = contract.pg_table.replace(".", "_")
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (contract.pg_table,))
    if cur.fetchone()[0]:
        return
    serialize_ddl(cur, contract.pg_table)
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {contract.pg_table} ({columns}, file_id text NOT NULL,"
        f" loaded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY ({key}))"
    )
    # BRIN, not B-tree: rows arrive a file at a time, roughly in date order, so block ranges
    # summarise them well, and a COPY pays almost nothing to keep them (two B-trees doubled it).
    cur.execute(
        f"CREATE INDEX IF NOT EXISTS {name}_file_id ON {contract.pg_table}"
        " USING brin (file_id) WITH (pages_per_range = 8, autosummarize = on)"
    )
    for column in contract.indexes:
        cur.execute(
            f"CREATE INDEX IF NOT EXISTS {name}_{column} ON {contract.pg_table}"
            f" USING brin ({column}) WITH (autosummarize = on)"
        )


def matches(flag_or_name: str, name_contains: str) -> bool:
    return not name_contains or name_contains in flag_or_name


# -- Luigi -------------------------------------------------------------------------------------
class IngestFiles(PipelineTask):
    """Run the chain of a batch of registered files (one task per batch, not per file: Luigi's
    scheduling cost grows faster than linearly with the number of tasks)."""

    file_ids = luigi.ListParameter()

    def complete(self) -> bool:
        ledger = Ledger.from_settings()
        for file_id in self.file_ids:
            try:
                if ledger.get(file_id)["status"] not in doc.SETTLED:
                    return False
            except FlagNotFound:
                return False
        return True

    def run(self) -> None:
        inbox = Inbox.from_settings()
        failures: list[str] = []
        for index, file_id in enumerate(self.file_ids, start=1):
            try:
                status = inbox.process(file_id)
            except Exception as exc:
                failures.append(f"{file_id}: {type(exc).__name__}: {exc}")
                status = doc.FAILED
            self.progress(
                f"{index}/{len(self.file_ids)} files; last {file_id}: {status}",
                100 * index / len(self.file_ids),
            )
        if failures:
            raise RuntimeError(f"{len(failures)} file(s) failed: " + "; ".join(failures[:5]))


class ProcessInbox(PipelineTask):
    """The sweep: register every ready file in the inbox, then run every unfinished chain.

    ``dataset`` and ``name_contains`` narrow it (e.g. one week of sales)."""

    dataset = luigi.Parameter(default="")
    name_contains = luigi.Parameter(default="")
    batch_size = luigi.IntParameter(default=50, significant=False)
    min_age_s = luigi.FloatParameter(default=10.0, significant=False)

    def _wanted(self, path: Path) -> bool:
        if not matches(path.name, self.name_contains):
            return False
        if not self.dataset:
            return True
        found = contract_for(path.name)
        return found is not None and found[0].dataset == self.dataset

    def complete(self) -> bool:
        inbox = Inbox.from_settings()
        # Any matching file present counts, ready or still being written: the run waits for it.
        waiting = [p for p in ready_files(inbox.paths.inbox, 0.0) if self._wanted(p)]
        return not waiting and not self._pending(inbox)

    def _pending(self, inbox: Inbox) -> list[str]:
        ids = inbox.pending(self.dataset or None)
        if not self.name_contains:
            return ids
        return [
            i for i in ids if matches(inbox.ledger.get(i)["source"]["name"], self.name_contains)
        ]

    def run(self) -> Iterator[list[IngestFiles]]:
        inbox = Inbox.from_settings()
        registered = 0
        # Files still being written are waited for (a little longer than min_age_s); one that
        # keeps changing is left for the next sweep.
        deadline = time.monotonic() + self.min_age_s + 5
        while True:
            for path in ready_files(inbox.paths.inbox, self.min_age_s):
                if self._wanted(path) and inbox.register(path):
                    registered += 1
            young = [p for p in ready_files(inbox.paths.inbox, 0.0) if self._wanted(p)]
            if not young or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        ids = self._pending(inbox)
        self.progress(f"registered {registered}; {len(ids)} file(s) to process")
        size = max(1, self.batch_size)
        if len(ids) > size:
            # Many files: batches as tasks, which Luigi's workers run in parallel.
            yield [IngestFiles(file_ids=ids[i : i + size]) for i in range(0, len(ids), size)]
        elif ids:
            # One batch's worth: run it here. A dynamic dependency would cost a scheduler round
            # trip (a worker poll) for a few files, more than the files themselves.
            IngestFiles(file_ids=ids).run()
        batches_run = math.ceil(len(ids) / max(1, self.batch_size))
        log.info(
            "inbox sweep: %d registered, %d in %d batch(es)", registered, len(ids), batches_run
        )


# -- the watcher -------------------------------------------------------------------------------
def watch(
    settle_s: float = 2.0,
    sweep_every_s: float = 60.0,
    local_scheduler: bool = False,
    stop_after_s: float | None = None,
) -> None:
    """Start the chain of every file that lands in the inbox within seconds.

    File-system events (watchdog: inotify on Linux) mark the inbox dirty; once no event has come
    for ``settle_s`` the watcher runs the same ``ProcessInbox`` the cron sweep runs, with files
    unchanged for ``settle_s`` counted as complete. It also sweeps every ``sweep_every_s`` in
    case an event was missed. Both triggers share one path, so a file is processed once."""
    import threading

    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    paths = load_settings().paths
    paths.ensure()
    dirty = threading.Event()
    last_event = [time.monotonic()]

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if not event.is_directory:
                last_event[0] = time.monotonic()
                dirty.set()

    observer = Observer()
    observer.schedule(Handler(), str(paths.inbox), recursive=False)
    observer.start()
    log.info("watching %s", paths.inbox)
    began = last_sweep = time.monotonic()
    dirty.set()  # whatever is already there
    try:
        while stop_after_s is None or time.monotonic() - began < stop_after_s:
            dirty.wait(timeout=0.5)
            now = time.monotonic()
            settled = dirty.is_set() and now - last_event[0] >= settle_s
            if settled or now - last_sweep >= sweep_every_s:
                dirty.clear()
                last_sweep = now
                luigi.build(
                    [ProcessInbox(min_age_s=settle_s)],
                    local_scheduler=local_scheduler,
                    log_level="WARNING",
                )
    finally:
        observer.stop()
        observer.join(10)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m pipeline.inbox", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("watch", help="start each landing file's chain within seconds")
    w.add_argument("--settle-seconds", type=float, default=2.0)
    w.add_argument("--sweep-every", type=float, default=60.0)
    w.add_argument("--local-scheduler", action="store_true")
    w.add_argument("--stop-after", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from monitoring.logs import setup_logging

    setup_logging("inbox-watch")
    watch(args.settle_seconds, args.sweep_every, args.local_scheduler, args.stop_after)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
