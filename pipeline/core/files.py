"""Durable file operations, the one way the project writes a file that must survive a crash.

``atomic_write`` (and ``atomic_open`` for writers that stream): the bytes go to a temporary file
beside the target, are fsynced, renamed over the target, and the folder is fsynced, so a reader
sees the old file or the new one, never half of one, and after a power cut the new one is there
if the call returned. The mode is the caller's choice: work files and notifications that may
hold personal data are the owner's only (0600, the default).

Standard library only: the stack scripts and the flag store use it too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

OWNER_ONLY = 0o600


def fsync_dir(path: Path) -> None:
    """Make the folder's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: Path, mode: int = OWNER_ONLY, durable: bool = True) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces ``path`` atomically when the block ends without an
    error (an error leaves ``path`` as it was and removes the temporary file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        os.chmod(tmp, mode)  # the umask may have narrowed it; never widened beyond the caller's
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write(
    path: Path, data: bytes | str, mode: int = OWNER_ONLY, durable: bool = True
) -> Path:
    """Replace ``path`` with ``data`` (text is written as UTF-8), atomically and durably."""
    with atomic_open(path, mode, durable) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


@contextlib.contextmanager
def file_lock(path: Path, blocking: bool = True) -> Iterator[bool]:
    """An exclusive flock on ``path`` (made if missing); with ``blocking=False`` yields False
    when someone else holds it. The system releases it when its holder dies: a claim that
    expires with its process."""
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
    """Rename within one file system, then make the rename itself durable (both folders)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(source, target)
    fsync_dir(target.parent)
    fsync_dir(source.parent)
