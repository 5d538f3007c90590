"""Load: a file's transformed rows into its dataset's PostgreSQL table by COPY, in one
transaction with the load marker, so a rerun never doubles rows and never skips a load that did
not commit."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import psycopg2.errors
import pyarrow as pa
import pyarrow.csv as pacsv

from config.settings import load_settings
from flags import document as doc
from monitoring.metrics import record_rows
from pipeline.core.faults import crash_point
from pipeline.inbox.contract import Contract
from pipeline.inbox.workspace import Workspace
from pipeline.systems import postgres
from pipeline.systems.postgres import (
    copy_csv,
    ensure_marker_table,
    serialize_ddl,
    summarize_brin,
    transaction,
    write_marker,
)

log = logging.getLogger(__name__)


class LoadStage(Workspace):
    def _load(self, flag: dict[str, Any], began: float) -> None:
        """Load the file's rows and record ``loaded`` (the chain loads and archives in one step,
        ``_load_and_archive``; this is the load alone)."""
        self.ledger.advance(flag["file_id"], doc.LOADED, **self._loaded(flag, began))

    @contextmanager
    def summaries_deferred(self) -> Iterator[None]:
        """Loads inside summarise their tables' new BRIN ranges once, at the end (a batch of
        files: one summary instead of a transaction per file). Only speed depends on it: a
        range not yet summarised is read by every query on the index, never skipped."""
        self.unsummarized = set()
        try:
            yield
        finally:
            tables, self.unsummarized = self.unsummarized, None
            for table in sorted(tables):
                try:
                    with transaction() as cur:
                        summarize_brin(cur, table)
                except Exception as exc:  # speed only: never hide the batch's own outcome
                    log.warning(
                        "%s: BRIN summary after the batch not done (%s); autovacuum or the next"
                        " batch does it",
                        table,
                        type(exc).__name__,
                    )

    def _loaded(self, flag: dict[str, Any], began: float) -> dict[str, Any]:
        """COPY the file's transformed rows in one transaction with the load marker (or find that
        a load committed before a crash), check the count against the transform's, and return the
        ``loaded`` stage's record for the flag (the caller writes it)."""
        file_id = flag["file_id"]
        contract = self.contract(flag)
        clean = self.work_dir(file_id) / "clean.csv"
        rows, copied = copy_once(contract, file_id, clean)
        crash_point("load.after_commit")
        expected = flag["stages"][doc.TRANSFORMED]["rows_out"]
        if rows != expected:
            # The flag must never say loaded for rows that are not all there (or more).
            raise RuntimeError(
                f"{contract.pg_table}: {rows} row(s) committed for {file_id}, the transform "
                f"produced {expected}; look before `flags retry` (the marker holds the count)"
            )
        if copied:  # counted once committed, and not again for a recovered load
            record_rows("inbox", contract.dataset, written=copied)
        if self.unsummarized is None:
            with transaction() as cur:
                summarize_brin(cur, contract.pg_table)
        else:
            self.unsummarized.add(contract.pg_table)
        return {
            "rows_in": rows,
            "rows_out": rows,
            "rows_rejected": 0,
            "duration_s": round(time.perf_counter() - began, 6),
            "details": {"table": contract.pg_table},
        }


# The tables this process has seen exist (database, table): a load goes straight to its
# transaction. A table dropped since (tests, a reset) makes the load's first statement fail with
# "undefined table"; the tables are then made again and the load runs once more.
_ready: set[tuple[str, int, str, str]] = set()


def copy_once(contract: Contract, file_id: str, clean: Path) -> tuple[int, int]:
    """The file's rows in the dataset's table, once: (rows the committed load recorded, rows
    copied now — 0 when a load committed earlier, before a crash, is found by its marker)."""
    pg = load_settings().postgres
    key = (pg.host, pg.port, pg.database, contract.pg_table)
    for attempt in (1, 2):
        if key not in _ready:
            # DDL in its own short transaction: inside the load it would take locks that
            # deadlock with parallel loads of other files.
            with transaction() as cur:
                ensure_marker_table(cur)
                ensure_table(cur, contract)
            _ready.add(key)
        try:
            return _copy_with_marker(contract, file_id, clean)
        except psycopg2.errors.UndefinedTable:
            _ready.discard(key)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _copy_with_marker(contract: Contract, file_id: str, clean: Path) -> tuple[int, int]:
    with transaction() as cur:
        # Committed before a crash, the flag just did not hear of it: take the marker's count.
        # Without a marker the file has no rows here: they commit together or not at all (and
        # the key's primary key refuses any row loaded some other way).
        found = postgres.fetch_value(
            cur, "ops/load_marker_rows", {"table": contract.pg_table, "update_id": file_id}
        )
        if found is not None:
            return int(found), 0
        if not clean.exists():
            raise FileNotFoundError(
                f"{clean}: transformed rows missing; `flags reset {file_id} --to validated`"
            )
        with open(clean, encoding="utf-8") as handle:
            rows = copy_csv(cur, contract.pg_table, [*contract.names, "file_id"], handle)
        write_marker(cur, contract.pg_table, file_id, rows)
        crash_point("load.before_commit")
    return rows, rows


def write_csv(frame: pd.DataFrame, handle: BinaryIO, header: bool = True) -> None:
    """Rows for ``COPY … CSV HEADER`` by Arrow's writer: a null is an empty field, an empty
    string a quoted one (pandas' writer is ~10x slower on a sales file). Exact: integers and
    decimals are written digit for digit; a float column is refused (it would have rounded).
    ``header=False`` appends a further chunk of the same file."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    if floats:
        raise TypeError(f"float columns {floats}: values must stay exact (int64, decimal)")
    pacsv.write_csv(table, handle, pacsv.WriteOptions(include_header=header))


def write_csv_table(table: pa.Table, handle: BinaryIO, header: bool = True) -> None:
    """``write_csv`` for rows already in Arrow: the same bytes for the same rows and types."""
    floats = [f.name for f in table.schema if pa.types.is_floating(f.type)]
    if floats:
        raise TypeError(f"float columns {floats}: values must stay exact (int64, decimal)")
    pacsv.write_csv(table, handle, pacsv.WriteOptions(include_header=header))


def ensure_table(cur: Any, contract: Contract) -> None:
    """The dataset's table, from its contract: its columns, the file each row came from."""
    table = contract.pg_table
    if postgres.table_exists(cur, table):
        return
    serialize_ddl(cur, table)
    definitions = postgres.column_definitions(
        (c.name, c.pg_type, c.nullable) for c in contract.columns
    )
    postgres.run(
        cur, "inbox/create_table", table=table, definitions=definitions, key=list(contract.key)
    )
    # Index names as before: <schema>_<table>_<column>, in the table's schema.
    prefix = table.replace(".", "_")
    postgres.run(cur, "inbox/create_file_index", table=table, index=f"{prefix}_file_id")
    for column in contract.indexes:
        postgres.run(
            cur,
            "inbox/create_column_index",
            table=table,
            index=f"{prefix}_{column}",
            column=column,
        )
