"""What the retention flow ages, declared once.

- Rows: every inbox dataset's PostgreSQL table (``pipeline/inbox/contract.py``) ages by the
  date column its contract names (``retention_column``; none: kept forever). Old rows move to
  ``<table>_archive`` (``sql/postgres/create_archive.sql``, ``move_old_rows.sql``).
- Files: the archived originals, ``<runtime>/archive/YYYY/MM/DD/<file id>__<name>.gz``, age by
  their day folder; a deleted one is noted in its flag (``archive_deleted_on``).
- Personal data: the work files that hold it (the telemetry flow's ``PERSONAL_WORK_FILES``
  under ``<runtime>/telemetry/<date>/``) expire by the time they were written.

Writes the day's counts to ``<runtime>/work/.retention/<day>.json`` (the day's marker).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.inbox.contract import CONTRACTS, Contract
from pipeline.telemetry.contract import PERSONAL_WORK_FILES

# The columns the inbox's load adds to a dataset's rows (inbox/sql/postgres/create_table.sql).
LOAD_COLUMNS = ("file_id", "loaded_at")


@dataclass(frozen=True)
class AgedTable:
    """A hot table whose rows older than the cut-off move to ``<table>_archive``, by the date
    in ``column`` ('' keeps them forever), every column as it is."""

    table: str
    column: str
    columns: tuple[str, ...]

    @property
    def archive(self) -> str:
        return f"{self.table}_archive"


def aged_table(contract: Contract) -> AgedTable:
    """A dataset's table as retention ages it: by its contract's ``retention_column``."""
    return AgedTable(contract.pg_table, contract.retention_column, (*contract.names, *LOAD_COLUMNS))


# Every inbox dataset's table, in the contracts' order.
AGED_TABLES = tuple(aged_table(contract) for contract in CONTRACTS.values())

# The archive's day folders (YYYY/MM/DD, under the runtime's archive/) and, in a flag, the key
# that records the day an archived original was deleted.
ARCHIVE_DAY_FOLDERS = "[0-9][0-9][0-9][0-9]/[0-9][0-9]/[0-9][0-9]"
DELETED_FLAG_KEY = "archive_deleted_on"

# Work files with personal data, under the runtime folder: they expire by age.
PERSONAL_WORK_FILE_GLOBS = tuple(f"telemetry/*/{name}" for name in PERSONAL_WORK_FILES)

# The day's marker (its counts), under the runtime's work/.
MARKER_FOLDER = ".retention"
