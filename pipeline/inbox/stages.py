"""A file's work files between stages, streamed so memory stays bounded whatever its size:

- the registered file, opened safely (``open_registered``): no link followed, no blocking, checked
  by its descriptor — a regular file, the very file registered, under the contract's size cap;
- ``valid.parquet``: the good rows, typed (int64, decimal128 at the contract's scale, date32,
  string: exact values, no float), one row group per chunk checked;
- ``<id>.rejects.csv`` in the quarantine folder: every bad row's row, column, rule and value;
- ``clean.csv``: the transformed rows for ``COPY``, the file id on every row.

The chain checks and transforms a file in one pass (``clean_file``: the rejects and
``clean.csv``, no ``valid.parquet``); ``validate_file`` and ``transform_file`` are the two
stages one at a time (a file whose flag says ``validated`` goes on from ``valid.parquet``).

Each is written atomically and durably (``atomic_open``): a reader sees all of it or none.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.files import atomic_open
from pipeline.inbox.contract import Contract
from pipeline.inbox.files import NotRegularFile, inode_of, open_regular, sha256_of_handle
from pipeline.inbox.load import write_csv, write_csv_table
from pipeline.inbox.transform import SeenKeys, transform, transform_arrow
from pipeline.inbox.validate import (
    FileRejected,
    Tally,
    arrow_schema,
    check_stream,
    from_arrow,
    to_arrow,
)

VALID_FILE = "valid.parquet"
CLEAN_FILE = "clean.csv"
BATCH_ROWS = 200_000


def open_registered(flag: dict[str, Any], max_bytes: int | None = None) -> BinaryIO:
    """The file a flag registered, opened safely and checked by its descriptor (``fstat``), never
    by its name: a regular file; at most ``max_bytes`` (checked before a byte is read); the very
    file registered — the inode recorded then, or, for a copy put back in its place, the same
    checksum. ``FileRejected`` says why not; an ``OSError`` is the caller's to judge
    (``files.file_fault``)."""
    try:
        handle = open_regular(Path(flag["source"]["path"]))
    except NotRegularFile as exc:
        raise FileRejected(f"{exc.what} where the registered file was") from None
    try:
        info = os.fstat(handle.fileno())
        if max_bytes is not None and info.st_size > max_bytes:
            raise FileRejected(
                f"{info.st_size:,} bytes: over the size cap of {max_bytes:,} bytes"
                f" ({flag['dataset']} contract); not read"
            )
        if flag["details"].get("inode") != inode_of(info) or info.st_size != flag["source"]["size"]:
            sha, size = sha256_of_handle(handle)
            if sha != flag["source"]["sha256"]:
                raise FileRejected(
                    f"not the file registered: {size:,} bytes with sha256 {sha[:16]}…, registered"
                    f" {flag['source']['size']:,} bytes with {flag['source']['sha256'][:16]}…"
                )
            handle.seek(0)
        return handle
    except BaseException:
        handle.close()
        raise


def validate_file(
    source: BinaryIO,
    contract: Contract,
    valid: Path,
    rejects: Path,
    *,
    chunk_bytes: int | None = None,
    chunk_rows: int | None = None,
) -> Tally:
    """Check a file as it is read: good rows to ``valid`` (typed Parquet), bad rows to
    ``rejects`` (CSV; only written when there are some), both durable when this returns;
    ``FileRejected`` (the file is unusable as a whole) leaves neither."""
    tally = Tally()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(atomic_open(valid))
        writer = stack.enter_context(pq.ParquetWriter(out, arrow_schema(contract)))
        bad: BinaryIO | None = None
        for checked in check_stream(
            source, contract, chunk_bytes=chunk_bytes, chunk_rows=chunk_rows
        ):
            tally.add(checked)
            if checked.rows_good:
                writer.write_table(
                    checked.arrow if checked.arrow is not None else to_arrow(checked.good, contract)
                )
            if len(checked.rejects):
                header = bad is None
                if bad is None:
                    bad = stack.enter_context(atomic_open(rejects))
                bad.write(checked.rejects.to_csv(index=False, header=header).encode("utf-8"))
    return tally


def clean_file(
    source: BinaryIO,
    contract: Contract,
    clean: Path,
    rejects: Path,
    file_id: str,
    *,
    chunk_bytes: int | None = None,
    chunk_rows: int | None = None,
) -> tuple[Tally, int, int]:
    """Check and transform a file in one pass as it is read: bad rows to ``rejects`` (CSV; only
    written when there are some), the good rows transformed (the first occurrence of a key in the
    whole file wins) to ``clean`` (CSV for COPY, with the file id), both durable when this
    returns: (the check's tally, rows out, duplicate keys removed). ``FileRejected`` (the file is
    unusable as a whole) leaves neither. The same rows as ``validate_file`` then
    ``transform_file``, without the typed work file between them."""
    tally = Tally()
    seen = SeenKeys(contract.key)
    rows_out = removed = 0
    header = True
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(atomic_open(clean))
        bad: BinaryIO | None = None
        for checked in check_stream(
            source, contract, chunk_bytes=chunk_bytes, chunk_rows=chunk_rows
        ):
            tally.add(checked)
            if checked.rows_good:
                done = (
                    transform_arrow(checked.arrow, contract, seen)
                    if checked.arrow is not None
                    else None
                )
                if done is None:
                    result = transform(checked.good, contract, seen)
                    write_csv(result.frame.assign(file_id=file_id), out, header=header)
                    kept, dropped = len(result.frame), result.duplicates_removed
                else:
                    write_csv_table(_with_file_id(done.table, file_id), out, header=header)
                    kept, dropped = done.table.num_rows, done.duplicates_removed
                rows_out += kept
                removed += dropped
                header = False
            if len(checked.rejects):
                first = bad is None
                if bad is None:
                    bad = stack.enter_context(atomic_open(rejects))
                bad.write(checked.rejects.to_csv(index=False, header=first).encode("utf-8"))
        if header:  # no good rows: the header alone, so COPY still sees the columns
            empty = transform(from_arrow(arrow_schema(contract).empty_table(), contract), contract)
            write_csv(empty.frame.assign(file_id=file_id), out)
    return tally, rows_out, removed


def _with_file_id(table: pa.Table, file_id: str) -> pa.Table:
    return table.append_column("file_id", pa.array([file_id] * table.num_rows, pa.string()))


def transform_file(
    valid: Path, contract: Contract, clean: Path, file_id: str, batch_rows: int | None = None
) -> tuple[int, int, int]:
    """Transform the validated rows a batch at a time (the first occurrence of a key in the
    whole file wins) into ``clean`` (CSV for COPY, with the file id), durable when this
    returns: (rows in, rows out, duplicate keys removed)."""
    seen = SeenKeys(contract.key)
    rows_in = rows_out = removed = 0
    # pre_buffer would keep every row group read so far in memory (measured: +400 MB over a
    # 1 GB file): read a row group's columns as they are needed instead.
    with (
        atomic_open(clean) as handle,
        pq.ParquetFile(valid, pre_buffer=False, buffer_size=1 << 20) as parquet,
    ):
        header = True
        for batch in parquet.iter_batches(batch_size=batch_rows or BATCH_ROWS):
            result = transform(from_arrow(batch, contract), contract, seen)
            write_csv(result.frame.assign(file_id=file_id), handle, header=header)
            header = False
            rows_in += batch.num_rows
            rows_out += len(result.frame)
            removed += result.duplicates_removed
        if header:  # no rows: the header alone, so COPY still sees the columns
            empty = transform(from_arrow(arrow_schema(contract).empty_table(), contract), contract)
            write_csv(empty.frame.assign(file_id=file_id), handle)
    return rows_in, rows_out, removed
