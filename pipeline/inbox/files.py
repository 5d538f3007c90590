"""The inbox's file-side helpers: names that can always be shown, opening a file safely,
checksums, locks, and which entries of the inbox are ready (complete uploads only)."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import time
from pathlib import Path
from typing import BinaryIO

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")


# -- names -------------------------------------------------------------------------------------
def display_name(raw: str) -> str:
    """A file name as text that can always be stored and shown: undecodable bytes as \\xNN."""
    return os.fsencode(raw).decode("utf-8", "backslashreplace")


def safe_name(raw: str) -> str:
    """A file name reduced to characters that are safe anywhere (archive and quarantine paths)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", display_name(raw)).lstrip(".")
    return cleaned[:120] or "unnamed"


# -- opening a file safely ---------------------------------------------------------------------
# Never follow a link, never block (a FIFO swapped in would wait for a writer for ever).
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# Errors that say nothing about the file itself: it went away (another worker took it), it is
# busy for a moment, or this machine is short of something. Any other error reading a file is the
# file's own trouble (unreadable: permissions, an I/O error, a name that cannot be opened).
VANISHED = frozenset({errno.ENOENT, errno.ENOTDIR})
TRANSIENT = frozenset({errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETXTBSY})
ENVIRONMENT = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOSPC, errno.EDQUOT, errno.EROFS}
)


class NotRegularFile(OSError):
    """Where a regular file was expected, the opened entry is something else (a link, a FIFO, a
    directory, a device): it is never read."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(errno.EINVAL, what, str(path))
        self.what = what


def describe_mode(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")]
    kinds += [(stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]
    for test, name in kinds:
        if test(mode):
            return name
    return f"not a regular file (mode {stat.filemode(mode)})"


def file_fault(exc: OSError) -> bool:
    """Is this error reading a file the file's own fault (so it is quarantined with the reason)?
    Only an error the system gave for it (an errno) can say so."""
    return exc.errno is not None and exc.errno not in VANISHED | TRANSIENT | ENVIRONMENT


def describe_error(exc: OSError) -> str:
    code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return f"{exc.strerror or exc} ({code})"


def open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading without following a link or blocking, checked by its opened
    descriptor (``fstat``), never by a name checked earlier: a regular file or
    ``NotRegularFile``. Other ``OSError``s are the caller's to judge (``file_fault``)."""
    try:
        fd = os.open(path, READ_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link as the last part of the path
            raise NotRegularFile(path, "a symbolic link: links are never followed") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(path, f"{describe_mode(info.st_mode)}: never read")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def inode_of(info: os.stat_result) -> str:
    """A file's identity on this machine (device:inode:mtime in ns; a rename keeps all three):
    recorded at registration, so a later stage checks that the file it opened is the one
    registered, unchanged."""
    return f"{info.st_dev}:{info.st_ino}:{info.st_mtime_ns}"


def sha256_of_handle(handle: BinaryIO) -> tuple[str, int]:
    """The checksum and size of what an open file holds, read from its start."""
    digest = hashlib.sha256()
    size = 0
    handle.seek(0)
    while chunk := handle.read(1 << 20):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_of(path: Path) -> tuple[str, int]:
    with open_regular(path) as handle:
        return sha256_of_handle(handle)


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
