"""The inbox's file-side helpers: names that can always be shown, checksums, locks, and which
entries of the inbox are ready (complete uploads only)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")


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
