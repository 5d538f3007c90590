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

    luigi --module pipeline.inbox inbox.ProcessInbox            # the sweep (cron, every 5 min)
    python -m pipeline.inbox watch                              # the watcher (a service)
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import luigi

from config.settings import load_settings
from flags import document as doc
from flags.ledger import Ledger
from flags.store import FlagNotFound
from pipeline.core.errors import ServerUnavailable
from pipeline.core.tasks import PipelineTask
from pipeline.inbox.chain import Inbox
from pipeline.inbox.contract import contract_for
from pipeline.inbox.files import ready_files
from pipeline.systems import postgres

log = logging.getLogger(__name__)
FLOWS = load_settings().flows  # the parameters' defaults


def matches(flag_or_name: str, name_contains: str) -> bool:
    return not name_contains or name_contains in flag_or_name


# -- Luigi -------------------------------------------------------------------------------------
class IngestFiles(PipelineTask):
    """Run the chain of a batch of registered files (one task per batch, not per file: Luigi's
    scheduling cost grows faster than linearly with the number of tasks)."""

    file_ids = luigi.ListParameter(
        description="The flag ids of the registered files to run through their chain."
    )
    owner = luigi.Parameter(
        default="",
        description="The sweep that made this batch (host-pid): batches of concurrent sweeps are"
        " distinct tasks; each file is claimed by whichever worker reaches it first.",
    )
    # luigid's [resources] postgres_loads caps the batches loading at once, over every worker.
    resources = {"postgres_loads": 1}

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
        with inbox.summaries_deferred():
            self._process_all(inbox)

    def _process_all(self, inbox: Inbox) -> None:
        failures: list[str] = []
        for index, file_id in enumerate(self.file_ids, start=1):
            try:
                status = inbox.process(file_id)
            except ServerUnavailable as exc:
                left = len(self.file_ids) - index + 1
                raise ServerUnavailable(
                    f"{exc}; stopped with {left} file(s) left for the next sweep"
                    " (no attempt spent: they go on once the server is back)"
                ) from exc
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

    dataset = luigi.Parameter(
        default="", description="Only files of this dataset (e.g. sales); empty: every dataset."
    )
    name_contains = luigi.Parameter(
        default="",
        description="Only files whose name contains this text (e.g. _2024_w07_ for one week).",
    )
    batch_size = luigi.IntParameter(
        default=FLOWS.inbox_batch_size,
        significant=False,
        description="Files per ingestion task; default "
        f"{FLOWS.inbox_batch_size} (setting PIPELINE_INBOX_BATCH_SIZE).",
    )
    min_age_s = luigi.FloatParameter(
        default=FLOWS.inbox_min_file_age_s,
        significant=False,
        description="Seconds a file must be unchanged before it is taken, so uploads in progress"
        f" are left alone; default {FLOWS.inbox_min_file_age_s:g}"
        " (setting PIPELINE_INBOX_MIN_FILE_AGE_S).",
    )

    worker = luigi.Parameter(
        default=f"{socket.gethostname()}-{os.getpid()}",
        description="Who runs this sweep (host-pid by default): several sweeps, on one host or"
        " many, run side by side against one luigid and share the inbox file by file.",
    )

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
        if ids:
            postgres.ping()  # an outage stops the sweep here, before any file is touched
        size = max(1, self.batch_size)
        # Each sweep starts at a different place in the list, so concurrent sweeps take different
        # files first instead of queueing on the same claims.
        start = zlib.crc32(self.worker.encode()) % len(ids) if ids else 0
        ordered = ids[start:] + ids[:start]
        if len(ordered) > size:
            # Many files: batches as tasks, which Luigi's workers (and luigid's other workers)
            # run in parallel.
            yield [
                IngestFiles(file_ids=ordered[i : i + size], owner=self.worker)
                for i in range(0, len(ordered), size)
            ]
        elif ordered:
            # One batch's worth: run it here. A dynamic dependency would cost a scheduler round
            # trip (a worker poll) for a few files, more than the files themselves.
            IngestFiles(file_ids=ordered, owner=self.worker).run()
        # Take over what a dead worker left half done: its claims went with it. Files that failed
        # here wait for the next sweep (an attempt each sweep, not several).
        orphans = [
            i
            for i in self._pending(inbox)
            if not inbox.claimed(i) and inbox.ledger.get(i)["status"] != doc.FAILED
        ]
        if orphans:
            log.warning("inbox sweep: taking over %d file(s) left by a dead worker", len(orphans))
            IngestFiles(file_ids=orphans, owner=f"{self.worker}-takeover").run()
        batches_run = math.ceil(len(ids) / max(1, self.batch_size))
        log.info(
            "inbox sweep: %d registered, %d in %d batch(es)", registered, len(ids), batches_run
        )
