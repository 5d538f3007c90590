"""The per-file chain: from wherever a file's flag says it is, run the next stage until it is
settled (archived, quarantined or a duplicate)::

    register -> validate -> transform -> load -> archive

Each stage lives in its own module (``register``, ``validate`` + ``transform`` (pure), ``load``,
``archive``); ``Inbox`` combines them on one runtime folder and one ledger.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from config.settings import load_settings
from flags import document as doc
from flags.document import FILE_ID
from flags.ledger import Ledger
from flags.store import CorruptFlag, FlagNotFound
from monitoring.logs import context as log_context
from monitoring.metrics import record_rows
from pipeline.core.errors import ServerUnavailable
from pipeline.core.faults import crash_point
from pipeline.core.files import file_lock
from pipeline.inbox.archive import ArchiveStage
from pipeline.inbox.files import describe_error, file_fault
from pipeline.inbox.load import LoadStage
from pipeline.inbox.register import UNKNOWN_DATASET, RegisterStage
from pipeline.inbox.stages import (
    CLEAN_FILE,
    VALID_FILE,
    clean_file,
    open_registered,
    transform_file,
)
from pipeline.inbox.validate import FileRejected, describe_rejects, reject_share

log = logging.getLogger(__name__)

# Attempts of a failed file the sweeps make on their own; then it waits for `flags retry`.
MAX_AUTOMATIC_ATTEMPTS = load_settings().flows.inbox_max_attempts


class Inbox(RegisterStage, LoadStage, ArchiveStage):
    """Every stage of ingestion, on one runtime folder and one ledger."""

    @classmethod
    def from_settings(cls) -> Inbox:
        settings = load_settings()
        settings.paths.ensure()
        return cls(settings.paths, Ledger.from_settings(settings))

    # -- the chain ----------------------------------------------------------------------------
    def process(self, file_id: str) -> str:
        """Run the file's chain from wherever its flag says it is; return its final status."""
        with log_context(file_id=file_id):
            return self._process(file_id)

    def claimed(self, file_id: str) -> bool:
        """True while some worker (any process, any host sharing the runtime folder) holds the
        file's claim; the claim is a lock the system releases when its holder dies."""
        with file_lock(self.lock_path(f"file-{file_id}"), blocking=False) as free:
            return not free

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
                    self.clear_work(file_id)  # the copy is durable and the flag names it
                    return str(status)
                if status == doc.RECEIVED and self._resume_registration(flag):
                    continue
                step = STEPS[status]
                began = time.perf_counter()
                try:
                    step(self, flag, began)
                except ServerUnavailable:
                    raise  # not the file's fault: no attempt spent, the next sweep goes on
                except Exception as exc:
                    self.ledger.fail(file_id, stage=self._stage_tried(file_id, status), error=exc)
                    raise

    def _stage_tried(self, file_id: str, status: str) -> str:
        """The stage a failed step was trying to reach: the one after where the flag is now (a
        step that loads and archives records the load before an archive failure)."""
        try:
            return NEXT.get(self.ledger.get(file_id)["status"], NEXT[status])
        except doc.FlagError:
            return NEXT[status]

    def _load_and_archive(self, flag: dict[str, Any], began: float) -> None:
        """Load the rows (committed with their marker, the count checked), make the archive copy
        durable, then record both stages in one flag write and clear the work folder. A failed
        archive copy leaves the flag at ``loaded`` (recorded before the error goes up)."""
        file_id = flag["file_id"]
        loaded = self._loaded(flag, began)
        archived_from = time.perf_counter()
        try:
            path = self.archive(file_id)
        except Exception:
            self.ledger.advance(file_id, doc.LOADED, **loaded)
            raise
        crash_point("archive.after_copy")
        self.ledger.advance_many(
            file_id,
            [
                (doc.LOADED, loaded),
                (
                    doc.ARCHIVED,
                    {
                        "duration_s": round(time.perf_counter() - archived_from, 6),
                        "details": {"archive_path": path},
                    },
                ),
            ],
        )
        crash_point("archive.after_flag")
        self.clear_work(file_id)  # the original goes only once the flag has the copy

    def _resume_registration(self, flag: dict[str, Any]) -> bool:
        """Finish what registration decided but a crash cut short; True if the flag changed.

        A later arrival of bytes already seen (its id has an arrival suffix) is a duplicate; a
        file no contract matches is quarantined. Both are decided by the file's name and content,
        so a rerun decides the same."""
        file_id = flag["file_id"]
        arrival = int(file_id.partition("-")[2] or 0)
        original = self.original_of(flag["source"]["sha256"], arrival) if arrival else None
        if original is not None and flag.get("duplicate_of") is None:
            self.ledger.mark_duplicate(file_id, original)
            return True
        if flag["dataset"] == UNKNOWN_DATASET:
            note = flag["history"][0].get("note") or ""
            reason = (
                note
                if not note.startswith("from ")
                else (f"no dataset contract matches the file name {flag['source']['name']!r}")
            )
            self.quarantine(file_id, reason)
            return True
        return False

    def _validate(self, flag: dict[str, Any], began: float) -> None:
        """Check the file against its contract and transform it as it is read, in one pass
        (bounded memory): bad rows to the reject file, good rows transformed to the work file
        COPY reads; both durable, then one flag write records both stages (validated,
        transformed). Unusable as a whole (unreadable, not the file registered, over the size
        cap, wrong shape, over the reject threshold): quarantined with the reason."""
        file_id = flag["file_id"]
        name = flag["source"]["name"]
        contract = self.contract(flag)
        rejects = self.paths.quarantine / f"{file_id}.rejects.csv"
        try:
            with open_registered(flag, contract.max_bytes) as source:
                tally, rows_out, removed = clean_file(
                    source, contract, self.work_dir(file_id) / CLEAN_FILE, rejects, file_id
                )
        except FileRejected as exc:
            self.quarantine(file_id, f"{name}: {exc}")
            return
        except OSError as exc:
            if not file_fault(exc):
                raise
            self.quarantine(file_id, f"{name}: unreadable: {describe_error(exc)}")
            return
        details: dict[str, Any] = {"rejects_path": str(rejects)} if tally.reject_count else {}
        if reject_share(tally) > contract.reject_threshold:
            self.quarantine(
                file_id,
                f"over the reject threshold {contract.reject_threshold:.0%}: "
                + describe_rejects(tally, name),
            )
            return
        crash_point("validate.after_work_file")
        crash_point("transform.after_work_file")
        record_rows("inbox", contract.dataset, read=tally.rows_in, rejected=tally.rows_rejected)
        removed_note = f"{removed} duplicate key(s) removed; " if removed else ""
        self.ledger.advance_many(
            file_id,
            [
                (
                    doc.VALIDATED,
                    {
                        "rows_in": tally.rows_in,
                        "rows_out": tally.rows_good,
                        "rows_rejected": tally.rows_rejected,
                        "duration_s": round(time.perf_counter() - began, 6),
                        "note": describe_rejects(tally, name) if tally.reject_count else None,
                        "details": details,
                    },
                ),
                (
                    doc.TRANSFORMED,
                    {
                        "rows_in": tally.rows_good,
                        "rows_out": rows_out,
                        "rows_rejected": 0,
                        "duration_s": 0.0,
                        "note": removed_note + "in one pass with the validation",
                    },
                ),
            ],
        )

    def _transform(self, flag: dict[str, Any], began: float) -> None:
        file_id = flag["file_id"]
        valid = self.work_dir(file_id) / VALID_FILE
        if not valid.exists():  # lost work file (e.g. a cleaned work folder): validate again
            self.ledger.reset(file_id, doc.RECEIVED, note="validated rows missing: validate again")
            return
        clean = self.work_dir(file_id) / CLEAN_FILE
        # A batch at a time, durable before the flag names it.
        rows_in, rows_out, removed = transform_file(valid, self.contract(flag), clean, file_id)
        crash_point("transform.after_work_file")
        self.ledger.advance(
            file_id,
            doc.TRANSFORMED,
            rows_in=rows_in,
            rows_out=rows_out,
            rows_rejected=0,
            duration_s=round(time.perf_counter() - began, 6),
            note=f"{removed} duplicate key(s) removed" if removed else None,
        )

    def pending(self, dataset: str | None = None) -> list[str]:
        """Files whose chain has not finished, from the file system and the JSON flags — never
        from the Redis index: a file is in ``work/<id>/`` from registration until its archive or
        quarantine copy is durable and its flag says so. A settled file's leftover folder (a
        crash after its flag was written) is cleared on the way; a failed file waits for a
        person once its automatic attempts are spent."""
        ids: list[str] = []
        if not self.paths.work.is_dir():
            return ids
        with os.scandir(self.paths.work) as entries:
            names = sorted(e.name for e in entries if e.is_dir() and FILE_ID.match(e.name))
        for file_id in names:
            try:
                flag = self.ledger.get(file_id)
            except FlagNotFound:
                log.error("work folder %s has no flag: left for a person", file_id)
                continue
            except CorruptFlag as exc:
                log.error("work folder %s: %s", file_id, exc)
                continue
            if dataset is not None and flag["dataset"] not in (dataset, UNKNOWN_DATASET):
                continue
            status = flag["status"]
            if status in doc.SETTLED:
                if status == doc.DUPLICATE and "archive_path" not in flag["details"]:
                    ids.append(file_id)  # its archive copy is still to be made
                else:
                    self.clear_work(file_id)
                continue
            if status == doc.FAILED and flag["attempts"] >= MAX_AUTOMATIC_ATTEMPTS:
                continue
            ids.append(file_id)
        return ids


# What runs from each status. Stages whose effects are all durable before one flag write are
# recorded together: validated + transformed (one pass over the file), loaded + archived (the
# commit, then the archive copy). A flag left at validated or loaded (an earlier version, or an
# archive copy that failed) goes on from there.
STEPS = {
    doc.RECEIVED: Inbox._validate,
    doc.VALIDATED: Inbox._transform,
    doc.TRANSFORMED: Inbox._load_and_archive,
    doc.LOADED: Inbox._archive,
}
NEXT = {
    doc.RECEIVED: doc.VALIDATED,
    doc.VALIDATED: doc.TRANSFORMED,
    doc.TRANSFORMED: doc.LOADED,
    doc.LOADED: doc.ARCHIVED,
}
