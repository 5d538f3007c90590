"""Register: take one inbox entry into the pipeline (checksum, flag, move into ``work/<id>/``);
the same bytes seen before make it a duplicate; links and special files are quarantined unread."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path

from flags import document as doc
from flags.store import FlagNotFound
from pipeline.core.files import durable_move
from pipeline.inbox.contract import contract_for
from pipeline.inbox.files import display_name, file_lock, safe_name, sha256_of
from pipeline.inbox.workspace import Workspace

log = logging.getLogger(__name__)

UNKNOWN_DATASET = "unknown"


class RegisterStage(Workspace):
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
