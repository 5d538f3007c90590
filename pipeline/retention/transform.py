"""The retention flow's decisions, pure: dates and names in, what is old out (no I/O).

- ``cutoff_day``: the first day kept, so many days before the day retention runs as of;
- ``old_archive_folders``: which day folders of the archive (``YYYY/MM/DD``) hold old files;
- ``archived_file_id``: whose flag records an archived original's deletion;
- ``expiry_time``: before when a work file with personal data was written if it has expired.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import PurePath


def cutoff_day(day: dt.date, days: int) -> dt.date:
    """The first day kept as of ``day``: data of the days before it is ``days`` days old or
    more."""
    return day - dt.timedelta(days=days)


def archive_day(folder: PurePath) -> dt.date | None:
    """The day an archive folder ``YYYY/MM/DD`` (relative to the archive) holds; None when its
    name is no date."""
    try:
        return dt.date(*(int(part) for part in folder.parts))
    except ValueError:
        return None


def old_archive_folders(folders: Iterable[PurePath], cutoff: dt.date) -> list[PurePath]:
    """The archive's day folders (relative, ``YYYY/MM/DD``) of days before ``cutoff``, in
    order; a folder whose name is no date is never old."""
    old = []
    for folder in sorted(folders):
        day = archive_day(folder)
        if day is not None and day < cutoff:
            old.append(folder)
    return old


def archived_file_id(name: str) -> str:
    """The file id an archived original's name starts with: ``<file id>__<name>.gz``."""
    return name.split("__", 1)[0]


def expiry_time(now: dt.datetime, max_age: dt.timedelta) -> float:
    """The POSIX time before which a work file was written if it is older than ``max_age``."""
    return now.timestamp() - max_age.total_seconds()
