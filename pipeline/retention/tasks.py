"""Old data out of the way: the file pipeline's archiving of old data.

- PostgreSQL: rows of a dataset's hot table older than ``hot_days`` (by the contract's
  ``retention_column``) move to ``<table>_archive`` in one transaction (DELETE ... RETURNING feeds
  the INSERT), so a row is always in exactly one of the two.
- Files: archived originals older than ``archive_days`` (by their dated folder) are deleted, and
  their flags say when.
- Personal data: the telemetry mart's work files with e-mails and names (``crm.parquet``,
  ``mart.parquet`` under ``<runtime>/telemetry/<date>/``) are deleted ``personal_days`` after they
  were written (default 7, ``PIPELINE_RETENTION_PERSONAL_DAYS``); a day recomputed later reads
  the CRM again.

    luigi --module pipeline.retention retention.ApplyRetention       # daily, from cron
    luigi --module pipeline.retention retention.ApplyRetention --hot-days 365 --archive-days 730

The defaults of ``hot_days`` and ``archive_days`` are settings (``PIPELINE_RETENTION_HOT_DAYS``,
``PIPELINE_RETENTION_ARCHIVE_DAYS``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import luigi

from config.settings import load_settings
from flags.ledger import Ledger
from flags.store import FlagNotFound
from pipeline.core.files import atomic_write
from pipeline.core.periods import new_token
from pipeline.core.tasks import PipelineTask
from pipeline.retention.contract import (
    AGED_TABLES,
    ARCHIVE_DAY_FOLDERS,
    DELETED_FLAG_KEY,
    MARKER_FOLDER,
    PERSONAL_WORK_FILE_GLOBS,
    AgedTable,
)
from pipeline.retention.transform import (
    archived_file_id,
    cutoff_day,
    expiry_time,
    old_archive_folders,
)
from pipeline.systems import postgres
from pipeline.systems.postgres import serialize_ddl, transaction

log = logging.getLogger(__name__)
FLOWS = load_settings().flows  # the parameters' defaults


def move_old_rows(aged: AgedTable, cutoff: dt.date) -> int:
    """Move rows older than ``cutoff`` to the archive table; return how many moved."""
    column = aged.column
    if not column:
        return 0
    table, archive = aged.table, aged.archive
    with transaction() as cur:
        if not postgres.table_exists(cur, table):
            return 0
        serialize_ddl(cur, archive)
        postgres.run(cur, "retention/create_archive", table=table, archive=archive)
        postgres.run(
            cur,
            "retention/move_old_rows",
            {"cutoff": cutoff},
            table=table,
            archive=archive,
            column=column,
            columns=list(aged.columns),
        )
        return int(cur.rowcount)


def delete_old_archives(archive_root: Path, cutoff: dt.date, ledger: Ledger) -> int:
    """Delete archived files in day folders (YYYY/MM/DD) before ``cutoff``; note it in flags."""
    deleted = 0
    if not archive_root.is_dir():
        return 0
    folders = [d.relative_to(archive_root) for d in archive_root.glob(ARCHIVE_DAY_FOLDERS)]
    for folder in old_archive_folders(folders, cutoff):
        day_dir = archive_root / folder
        for path in sorted(day_dir.iterdir()):
            file_id = archived_file_id(path.name)
            path.unlink()
            deleted += 1
            try:
                ledger.annotate(
                    file_id,
                    DELETED_FLAG_KEY,
                    dt.date.today().isoformat(),
                    note=f"retention: {path.name}",
                )
            except (FlagNotFound, ValueError):
                log.warning("retention deleted %s, which has no flag", path)
        shutil.rmtree(day_dir, ignore_errors=True)
    return deleted


def delete_personal_work_files(runtime: Path, max_age: dt.timedelta) -> int:
    """Delete the telemetry work files with personal data written more than ``max_age`` ago."""
    deleted = 0
    cutoff = expiry_time(dt.datetime.now(dt.UTC), max_age)
    for pattern in PERSONAL_WORK_FILE_GLOBS:
        for path in sorted(runtime.glob(pattern)):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
            except FileNotFoundError:
                continue  # deleted meanwhile (a rerun rewrote it, another retention run)
    return deleted


class ApplyRetention(PipelineTask):
    """Apply retention once a day; the counts are kept in ``work/.retention/<day>.json``."""

    day = luigi.DateParameter(
        default=dt.date.today(), description="The day retention runs as of (default: today)."
    )
    hot_days = luigi.IntParameter(
        default=FLOWS.retention_hot_days,
        description="Rows older than this many days move to the archive table; default"
        f" {FLOWS.retention_hot_days} (setting PIPELINE_RETENTION_HOT_DAYS).",
    )
    archive_days = luigi.IntParameter(
        default=FLOWS.retention_archive_days,
        description="Archived files older than this many days are deleted; default"
        f" {FLOWS.retention_archive_days} (setting PIPELINE_RETENTION_ARCHIVE_DAYS).",
    )

    personal_days = luigi.IntParameter(
        default=FLOWS.retention_personal_days,
        description="Work files with personal data (the telemetry mart's CRM and mart Parquet)"
        f" are deleted this many days after they were written; default"
        f" {FLOWS.retention_personal_days} (setting PIPELINE_RETENTION_PERSONAL_DAYS).",
    )
    force = luigi.BoolParameter(
        default=False,
        significant=False,
        description="Run again even if it ran for this day: rows and files already moved or"
        " deleted are not touched twice.",
    )
    worker_timeout = FLOWS.task_timeout_s

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.force_token = new_token() if self.force else ""

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(
            str(load_settings().paths.work / MARKER_FOLDER / f"{self.day}.json")
        )

    def complete(self) -> bool:
        path = Path(self.output().path)
        if not path.exists():
            return False
        return not self.force_token or json.loads(path.read_text()).get("run") == self.force_token

    def run(self) -> None:
        settings = load_settings()
        counts: dict[str, Any] = {"day": self.day.isoformat(), "rows_moved": {}, "files_deleted": 0}
        counts["run"] = self.force_token
        for aged in AGED_TABLES:
            moved = move_old_rows(aged, cutoff_day(self.day, self.hot_days))
            counts["rows_moved"][aged.table] = moved
            log.info("retention: %d rows of %s moved to its archive", moved, aged.table)
        counts["files_deleted"] = delete_old_archives(
            settings.paths.archive,
            cutoff_day(self.day, self.archive_days),
            Ledger.from_settings(settings),
        )
        log.info("retention: %d archived files deleted", counts["files_deleted"])
        counts["personal_files_deleted"] = delete_personal_work_files(
            settings.paths.runtime, dt.timedelta(days=self.personal_days)
        )
        log.info(
            "retention: %d work files with personal data deleted",
            counts["personal_files_deleted"],
        )
        moved_rows = sum(counts["rows_moved"].values())
        self.progress(f"moved {moved_rows} rows, deleted {counts['files_deleted']} files", 100)
        atomic_write(Path(self.output().path), json.dumps(counts), mode=0o644)
