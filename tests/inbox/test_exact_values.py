"""Values stay exact from the file to the COPY rows, through every work file, and the work files
are written a chunk at a time (no server needed)."""

from __future__ import annotations

import io
import os
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.inbox.contract import INT64_MAX, SALES
from pipeline.inbox.files import inode_of
from pipeline.inbox.load import write_csv
from pipeline.inbox.stages import open_registered, transform_file, validate_file
from pipeline.inbox.transform import SeenKeys, drop_duplicate_keys, to_scale, transform
from pipeline.inbox.validate import FileRejected, check, from_arrow
from tests.fixtures.inbox import HEADER


def sales_csv(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


EXACT_ROWS = (
    "123456789012345678,1,1,1,2024-01-02,0.125,North",
    f"{INT64_MAX},1,1,1,2024-01-02,1.005,South",
    "9007199254740993,1,1,1,2024-01-02,2.675,East",
)


def test_amounts_are_brought_to_the_contract_scale_half_up_and_floats_are_refused() -> None:
    column = SALES.column("sale_amount")
    wide = pd.Series(
        pd.arrays.ArrowExtensionArray(
            pa.array(
                [Decimal("0.125"), Decimal("1.005"), Decimal("-0.125"), None],
                type=pa.decimal128(20, 3),
            )
        )
    )
    assert to_scale(wide, column).tolist()[:3] == [
        Decimal("0.13"),
        Decimal("1.01"),
        Decimal("-0.13"),
    ]
    assert str(to_scale(wide, column).dtype) == "decimal128(14, 2)[pyarrow]"
    with pytest.raises(TypeError, match="not a decimal"):
        to_scale(pd.Series([0.125, 1.005]), column)


def test_the_sales_transform_keeps_ids_and_cents_exact() -> None:
    checked = check(sales_csv(*EXACT_ROWS), SALES)
    out = transform(checked.good, SALES).frame
    assert out["sale_id"].tolist() == [123456789012345678, INT64_MAX, 9007199254740993]
    assert out["sale_amount"].tolist() == [Decimal("0.13"), Decimal("1.01"), Decimal("2.68")]


def test_the_first_occurrence_of_a_key_wins_across_a_files_chunks() -> None:
    seen = SeenKeys(("sale_id",))
    chunks = [[5, 1, 5, 3], [2, 1, 7], [INT64_MAX, 7, 3, 8], [INT64_MAX]]
    kept = []
    for keys in chunks:
        frame = pd.DataFrame({"sale_id": pd.array(keys, dtype="Int64")})
        kept += drop_duplicate_keys(frame, ("sale_id",), seen).frame["sale_id"].tolist()
    assert kept == [5, 1, 3, 2, 7, INT64_MAX, 8]
    pairs = SeenKeys(("a", "b"))
    first = pd.DataFrame({"a": [1, 1, 2], "b": ["x", "y", "x"]})
    again = pd.DataFrame({"a": [1, 2, 2], "b": ["y", "x", "y"]})
    assert pairs.first_seen(first).tolist() == [True, True, True]
    assert pairs.first_seen(again).tolist() == [False, False, True]


def test_the_copy_rows_are_written_digit_for_digit_and_a_float_is_refused() -> None:
    checked = check(sales_csv(*EXACT_ROWS), SALES)
    out = io.BytesIO()
    write_csv(transform(checked.good, SALES).frame, out)
    lines = out.getvalue().decode().splitlines()
    assert lines[1:] == [
        '123456789012345678,1,1,1,2024-01-02,0.13,"North"',
        f'{INT64_MAX},1,1,1,2024-01-02,1.01,"South"',
        '9007199254740993,1,1,1,2024-01-02,2.68,"East"',
    ]
    with pytest.raises(TypeError, match="exact"):
        write_csv(pd.DataFrame({"sale_amount": [0.13]}), io.BytesIO())


def test_the_work_files_keep_exact_types_chunk_after_chunk(tmp_path: Path) -> None:
    rows = [f"{10**17 + i},1,1,1,2024-01-02,{i}.005,North" for i in range(1, 3001)]
    rows[1500] = "x,1,1,1,2024-01-02,1,North"  # one bad row: that column goes row by row
    rows.append(rows[0])  # a repeated key, in a later chunk than its first occurrence
    valid, rejects, clean = tmp_path / "valid.parquet", tmp_path / "r.csv", tmp_path / "clean.csv"
    tally = validate_file(
        io.BytesIO(sales_csv(*rows)), SALES, valid, rejects, chunk_bytes=8192, chunk_rows=500
    )
    assert (tally.rows_in, tally.rows_good, tally.rows_rejected) == (3001, 3000, 1)
    assert rejects.read_text().splitlines() == [
        "row,column,rule,value",
        "1501,sale_id,type: integer,x",
    ]
    assert pq.ParquetFile(valid).metadata.num_row_groups > 5  # written a chunk at a time
    table = pq.read_table(valid)
    assert table.schema.field("sale_id").type == pa.int64()
    assert table.schema.field("sale_amount").type == pa.decimal128(14, 2)
    back = from_arrow(table, SALES)
    assert back["sale_id"].iloc[0] == 10**17 + 1 and str(back["sale_id"].dtype) == "Int64"
    assert back["sale_amount"].iloc[0] == Decimal("1.01")
    assert transform_file(valid, SALES, clean, "f1", batch_rows=256) == (3000, 2999, 1)
    copy_rows = clean.read_text().splitlines()
    assert copy_rows[1] == '100000000000000001,1,1,1,2024-01-02,1.01,"North","f1"'
    assert copy_rows[-1].startswith("100000000000003000,") and ",3000.01," in copy_rows[-1]
    assert len(copy_rows) == 1 + 2999


def test_a_file_found_unusable_late_leaves_no_work_file(tmp_path: Path) -> None:
    data = sales_csv(*["1,1,1,1,2024-01-02,1,North"] * 5000) + b"\xff\n"
    valid, rejects = tmp_path / "valid.parquet", tmp_path / "rejects.csv"
    with pytest.raises(FileRejected, match="not valid utf-8"):
        validate_file(io.BytesIO(data), SALES, valid, rejects, chunk_bytes=4096)
    assert sorted(tmp_path.iterdir()) == []


def _flag(path: Path, data: bytes, **details: str) -> dict:
    import hashlib

    return {
        "dataset": "sales",
        "source": {
            "path": str(path),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        "details": details,
    }


def test_a_stage_opens_only_the_very_file_registered(tmp_path: Path) -> None:
    data = sales_csv(*EXACT_ROWS)
    path = tmp_path / "sales.csv"
    path.write_bytes(data)
    flag = _flag(path, data, inode=inode_of(path.stat()))
    with open_registered(flag) as handle:
        assert handle.read() == data
    # Put back as a copy (another inode), same bytes: checked by checksum, accepted.
    path.unlink()
    path.write_bytes(data)
    with open_registered(flag) as handle:
        assert handle.read() == data
    # Other bytes in its place: refused.
    path.write_bytes(data.replace(b"0.125", b"9.125"))
    with pytest.raises(FileRejected, match="not the file registered"):
        open_registered(flag)
    # A link in its place is never followed; a FIFO never blocks.
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileRejected, match="symbolic link"):
        open_registered(flag)
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(FileRejected, match="FIFO"):
        open_registered(flag)


def test_a_file_over_the_size_cap_is_refused_before_a_byte_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"x" * 5000)
    flag = _flag(path, b"")  # no inode recorded, wrong checksum: would be read to check it
    with pytest.raises(FileRejected, match="5,000 bytes: over the size cap of 4,096 bytes"):
        open_registered(flag, max_bytes=4096)
