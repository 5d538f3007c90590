"""The chain's two ends for a file: archived (gzip under ``archive/YYYY/MM/DD/``, durable before
the work copy goes) or quarantined (kept whole, with its reason beside it)."""

from __future__ import annotations

import datetime as dt
import gzip
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from flags import document as doc
from pipeline.core.faults import crash_point
from pipeline.core.files import atomic_open, atomic_write, durable_move
from pipeline.inbox.files import open_regular
from pipeline.inbox.workspace import Workspace

log = logging.getLogger(__name__)


class ArchiveStage(Workspace):
    def quarantine(self, file_id: str, reason: str) -> None:
        """Keep the whole file, with its reason beside it; the flag says quarantined."""
        flag = self.ledger.get(file_id)
        source = Path(flag["source"]["path"])
        target = self.paths.quarantine / f"{file_id}__{source.name}"
        # The effects first, durably (a crash here is resumed: the move is skipped when done),
        # then the flag, then the empty work folder.
        if source.exists() or source.is_symlink():
            durable_move(source, target)
        crash_point("quarantine.after_move")
        atomic_write(self.paths.quarantine / f"{file_id}.reason.txt", reason + "\n", mode=0o640)
        crash_point("quarantine.after_reason")
        if flag["status"] == doc.FAILED:
            flag = self.ledger.retry(file_id, note="quarantining after a failure")
        self.ledger.advance(
            file_id, doc.QUARANTINED, note=reason, details={"quarantine_path": str(target)}
        )
        crash_point("quarantine.after_flag")
        self.clear_work(file_id)
        log.warning("quarantined %s: %s", file_id, reason)

    def clear_work(self, file_id: str) -> None:
        """Remove a settled file's work folder (its archive or quarantine copy is durable and
        its flag says so)."""
        shutil.rmtree(self.work_dir(file_id), ignore_errors=True)

    def archive(self, file_id: str) -> str:
        """gzip the original under archive/YYYY/MM/DD/, durably (the caller records it in the
        flag, then clears the work folder)."""
        flag = self.ledger.get(file_id)
        source = Path(flag["source"]["path"])
        day = dt.datetime.fromisoformat(flag["created_at"])
        target = self.paths.archive / f"{day:%Y/%m/%d}" / f"{file_id}__{source.name}.gz"
        if not target.exists():
            # gzip -1: on a sales file 0.8 ms instead of 3.0 ms at gzip's default -6, for 24%
            # more bytes (25% of the CSV instead of 20%); the archive is written once per file
            # and rarely read, while every file of a sweep waits for it.
            with (
                open_regular(source) as raw,  # no link followed, a regular file
                atomic_open(target, mode=0o640) as out,
                gzip.GzipFile(
                    filename=source.name, mode="wb", fileobj=out, mtime=0, compresslevel=1
                ) as gz,
            ):
                shutil.copyfileobj(raw, gz, 1 << 20)
        return str(target)

    def _archive(self, flag: dict[str, Any], began: float) -> None:
        path = self.archive(flag["file_id"])  # durable before the flag says archived
        crash_point("archive.after_copy")
        self.ledger.advance(
            flag["file_id"],
            doc.ARCHIVED,
            duration_s=round(time.perf_counter() - began, 6),
            details={"archive_path": path},
        )
        crash_point("archive.after_flag")
        self.clear_work(flag["file_id"])  # the original goes only once the flag has the copy
