"""Register: take one inbox entry into the pipeline (checksum, flag, move into ``work/<id>/``);
the same bytes seen before make it a duplicate; links and special files are quarantined unread,
and so is a file that cannot be read (with the reason).

A name checked earlier is never trusted: the entry is opened without following a link or blocking
(``open_regular``), the opened descriptor is checked, the checksum is computed from it, and the
name must still be that very file (same inode) when it is moved.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from pathlib import Path
from typing import BinaryIO

from flags import document as doc
from flags.store import FlagNotFound
from pipeline.core.faults import crash_point
from pipeline.core.files import durable_move, file_lock
from pipeline.inbox.contract import Contract, contract_for
from pipeline.inbox.files import (
    TRANSIENT,
    VANISHED,
    NotRegularFile,
    describe_error,
    display_name,
    file_fault,
    inode_of,
    open_regular,
    safe_name,
    same_file,
    sha256_of_handle,
)
from pipeline.inbox.workspace import Workspace

log = logging.getLogger(__name__)

UNKNOWN_DATASET = "unknown"
# A file taken into the pipeline: its id, the original it duplicates, its contract (if any).
Taken = tuple[str, str | None, tuple[Contract, dict[str, str]] | None]


class RegisterStage(Workspace):
    def register(self, path: Path) -> str | None:
        """Take one inbox entry into the pipeline; return its flag id, or None when it is left in
        the inbox for the next sweep (it vanished, is still being written, or was replaced while
        it was being read).

        One entry's trouble never stops a sweep: what is the file's fault (it cannot be read, it
        is a link or a FIFO) is quarantined with the reason; only what is not the file's (no file
        descriptors or disk space left, a server down) is raised."""
        try:
            return self._register(path)
        except OSError as exc:
            if exc.errno not in VANISHED | TRANSIENT:
                raise
            log.warning(
                "%s: %s; left for the next sweep", display_name(path.name), describe_error(exc)
            )
            return None

    def _register(self, path: Path) -> str | None:
        key = hashlib.sha1(os.fsencode(path.name)).hexdigest()
        with file_lock(self.lock_path(f"inbox-{key}")):
            try:
                info = path.lstat()
            except FileNotFoundError:
                return None  # the other trigger took it
            if not stat.S_ISREG(info.st_mode):
                return self._register_not_regular(path, info)
            try:
                handle = open_regular(path)
            except NotRegularFile:  # replaced by a link or a FIFO since the lstat: never read
                now = path.lstat()
                if stat.S_ISREG(now.st_mode):  # and back again: the next sweep looks afresh
                    return None
                return self._register_not_regular(path, now)
            except OSError as exc:
                return self._register_unreadable(path, info, exc)
            with handle:
                taken = self._take(path, handle)
            if not isinstance(taken, tuple):
                return taken
        file_id, original, found = taken
        log.info("registered %s as %s", display_name(path.name), file_id)
        # Another sweep may already be finishing this file (it is in work/ now): whoever holds
        # its claim decides; a flag past "received" was decided already.
        with file_lock(self.lock_path(f"file-{file_id}"), blocking=False) as mine:
            if not mine or self.ledger.get(file_id)["status"] != doc.RECEIVED:
                return file_id
            if original is not None:
                self.ledger.mark_duplicate(file_id, original)
            elif found is None:
                reason = f"no dataset contract matches the file name {display_name(path.name)!r}"
                self.quarantine(file_id, reason)
        if original is not None:
            crash_point("register.after_duplicate")
            self.process(file_id)  # archives it; never loaded twice
        return file_id

    def _take(self, path: Path, handle: BinaryIO) -> Taken | str | None:
        """Checksum the file open as ``handle`` (``path``'s entry when it was opened), flag it and
        move that very file into its work folder: (id, original, contract) when taken; an id
        when it was settled here (quarantined); None when it is left for the next sweep."""
        opened = os.fstat(handle.fileno())
        try:
            sha, size = sha256_of_handle(handle)
        except OSError as exc:
            return self._register_unreadable(path, opened, exc)
        after = os.fstat(handle.fileno())
        if size != after.st_size or after.st_mtime_ns != opened.st_mtime_ns:
            log.info("%s is still being written: left for the next sweep", display_name(path.name))
            return None
        if not same_file(path.lstat(), opened):
            log.warning(
                "%s was replaced while it was read: left for the next sweep",
                display_name(path.name),
            )
            return None
        found = contract_for(path.name)
        dataset = found[0].dataset if found else UNKNOWN_DATASET
        # Two names with the same bytes, registered at once by two sweeps, must get two ids: the
        # arrival number is chosen, flagged and filled under a lock on the content.
        with file_lock(self.lock_path(f"sha-{sha[:32]}")):
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
                    details={"inode": inode_of(opened)},
                )
            crash_point("register.after_flag")
            durable_move(path, work_path)
            crash_point("register.after_move")
        if not same_file(work_path.lstat(), opened):  # swapped between the check and the move
            self.quarantine(
                file_id,
                f"{display_name(path.name)} was replaced while it was being registered: the"
                " entry moved is not the file checked; kept whole, never read",
            )
            return file_id
        return file_id, original, found

    def _allocate(self, sha: str, path: Path) -> tuple[str, str | None]:
        """The id for this arrival, and the original's id if these bytes were seen before.

        A flag still ``received`` for the same name whose work file is missing is this very file
        after a crash between flag and move: it is resumed, not counted twice."""
        arrival = 0
        while True:
            candidate = doc.file_id_for(sha, arrival)
            try:
                flag = self.ledger.get(candidate)
            except FlagNotFound:
                return candidate, self.original_of(sha, arrival)
            if (
                flag["status"] == doc.RECEIVED
                and flag["source"]["name"] == display_name(path.name)
                and not Path(flag["source"]["path"]).exists()
            ):
                return candidate, self.original_of(sha, arrival)
            arrival += 1

    def original_of(self, sha: str, arrival: int) -> str | None:
        """The earlier arrival of the same bytes this one duplicates: the first that was not
        quarantined (bytes refused under another name, e.g. one no contract matches, do not make
        a valid delivery a duplicate). None: this arrival is an original."""
        for earlier in range(arrival):
            try:
                flag = self.ledger.get(doc.file_id_for(sha, earlier))
            except FlagNotFound:
                continue
            if flag["status"] != doc.QUARANTINED:
                return str(flag["file_id"])
        return None

    def _register_not_regular(self, path: Path, info: os.stat_result) -> str:
        """Links and other non-regular entries are never opened: the entry itself is quarantined."""
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(path)
            what = f"symbolic link to {display_name(target)}: links are never followed"
            identity = b"symlink\0" + os.fsencode(target)
        else:
            what = f"not a regular file (mode {stat.filemode(info.st_mode)}): never opened"
            identity = b"special\0" + os.fsencode(path.name) + str(info.st_ino).encode()
        return self._register_unread(path, what, identity)

    def _register_unreadable(self, path: Path, info: os.stat_result, exc: OSError) -> str:
        """A regular file that cannot be read (permissions, an I/O error): quarantined with the
        reason, so it never blocks the others. An error that is not the file's is raised."""
        if not file_fault(exc):
            raise exc
        what = f"unreadable: {describe_error(exc)}; quarantined as it is"
        identity = b"unreadable\0" + os.fsencode(path.name) + str(info.st_ino).encode()
        log.error("%s is %s", display_name(path.name), what)
        return self._register_unread(path, what, identity)

    def _register_unread(self, path: Path, what: str, identity: bytes) -> str:
        """Quarantine an inbox entry that is not read: a flag with the reason (the content's
        checksum is unknown: an id from the entry's identity instead)."""
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
