"""Retention's decisions, pure: the cut-off day, which archive day folders are old, whose flag an
archived file is, and when a personal work file has expired."""

from __future__ import annotations

import datetime as dt
from pathlib import PurePath

from pipeline.inbox.contract import CONTRACTS
from pipeline.retention.contract import AGED_TABLES
from pipeline.retention.transform import (
    archived_file_id,
    cutoff_day,
    expiry_time,
    old_archive_folders,
)


def test_the_cutoff_is_so_many_days_before_the_day() -> None:
    assert cutoff_day(dt.date(2024, 1, 5), 1) == dt.date(2024, 1, 4)
    assert cutoff_day(dt.date(2024, 3, 1), 365) == dt.date(2023, 3, 2)


def test_day_folders_before_the_cutoff_are_old_and_others_are_kept() -> None:
    folders = [PurePath(p) for p in ("2024/01/04", "2022/01/03", "2024/01/03", "2023/02/30")]
    assert old_archive_folders(folders, dt.date(2024, 1, 4)) == [
        PurePath("2022/01/03"),
        PurePath("2024/01/03"),
    ]  # in order; 2023/02/30 is no day and never old


def test_an_archived_file_names_its_flag() -> None:
    assert archived_file_id("f-123__sales_2024_w01_north.csv.gz") == "f-123"


def test_a_work_file_expires_max_age_after_it_was_written() -> None:
    now = dt.datetime(2024, 1, 8, tzinfo=dt.UTC)
    assert (
        expiry_time(now, dt.timedelta(days=7)) == dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()
    )


def test_every_inbox_table_ages_by_its_contracts_column() -> None:
    assert [(a.table, a.column) for a in AGED_TABLES] == [
        (c.pg_table, c.retention_column) for c in CONTRACTS.values()
    ]
    sales = AGED_TABLES[0]
    assert sales.archive == "sales.sales_archive"
    assert sales.columns[-2:] == ("file_id", "loaded_at")
