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
from pathlib import Path
from typing import Any

import pandas as pd

from config.settings import load_settings
from flags import document as doc
from flags.document import FILE_ID
from flags.ledger import Ledger
from flags.store import CorruptFlag, FlagNotFound
from monitoring.logs import context as log_context
from monitoring.metrics import record_rows
from pipeline.core.errors import ServerUnavailable
from pipeline.core.files import atomic_open, atomic_write
from pipeline.inbox.archive import ArchiveStage
from pipeline.inbox.files import file_lock
from pipeline.inbox.load import LoadStage, write_csv
from pipeline.inbox.register import UNKNOWN_DATASET, RegisterStage
from pipeline.inbox.transform import transform
from pipeline.inbox.validate import FileRejected, check, describe_rejects, reject_share

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
                    self.ledger.fail(file_id, stage=NEXT[status], error=exc)
                    raise

    def _resume_registration(self, flag: dict[str, Any]) -> bool:
        """Finish what registration decided but a crash cut short; True if the flag changed.

        A later arrival of bytes already seen (its id has an arrival suffix) is a duplicate; a
        file no contract matches is quarantined. Both are decided by the file's name and content,
        so a rerun decides the same."""
        file_id = flag["file_id"]
        base, _, arrival = file_id.partition("-")
        if arrival and flag.get("duplicate_of") is None:
            self.ledger.mark_duplicate(file_id, base)
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
            atomic_write(rejects, checked.rejects.to_csv(index=False))
            details["rejects_path"] = str(rejects)
        if reject_share(checked) > contract.reject_threshold:
            self.quarantine(
                file_id,
                f"over the reject threshold {contract.reject_threshold:.0%}: "
                + describe_rejects(checked, flag["source"]["name"]),
            )
            return
        with atomic_open(self.work_dir(file_id) / "valid.pkl") as handle:  # durable before the flag
            checked.good.to_pickle(handle)
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
        with atomic_open(clean) as handle:  # durable before the flag names it
            write_csv(frame, handle)
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
