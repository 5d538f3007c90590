"""The chain checks and transforms a file in one pass (``clean_file``, rows kept in Arrow when the
fast path takes a chunk whole); it must give exactly what the two stages one at a time give
(``validate_file`` then ``transform_file``, through pandas and the typed work file): the same
COPY bytes, the same rejects, the same counts (no server needed)."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.inbox.contract import INT64_MAX, SALES
from pipeline.inbox.stages import clean_file, transform_file, validate_file
from pipeline.inbox.transform import SeenKeys, transform, transform_arrow
from pipeline.inbox.validate import FileRejected, check, to_arrow
from tests.fixtures.inbox import HEADER, sales_rows


def sales_csv(rows: list[str]) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def two_stages(data: bytes, tmp: Path, **chunks: int) -> tuple[bytes, bytes, tuple[int, ...]]:
    valid, rejects, clean = tmp / "valid.parquet", tmp / "r2.csv", tmp / "c2.csv"
    tally = validate_file(io.BytesIO(data), SALES, valid, rejects, **chunks)
    rows_in, rows_out, removed = transform_file(valid, SALES, clean, "f1")
    assert rows_in == tally.rows_good
    counts = (tally.rows_in, tally.rows_good, tally.rows_rejected, rows_out, removed)
    return clean.read_bytes(), rejects.read_bytes() if rejects.exists() else b"", counts


def one_pass(data: bytes, tmp: Path, **chunks: int) -> tuple[bytes, bytes, tuple[int, ...]]:
    rejects, clean = tmp / "r1.csv", tmp / "c1.csv"
    tally, rows_out, removed = clean_file(io.BytesIO(data), SALES, clean, rejects, "f1", **chunks)
    counts = (tally.rows_in, tally.rows_good, tally.rows_rejected, rows_out, removed)
    return clean.read_bytes(), rejects.read_bytes() if rejects.exists() else b"", counts


def corpus(seed: int) -> list[str]:
    """Sales rows with what makes the paths differ: exact ints past 2**53, amounts to round
    half-up, keys repeated across chunks, bad rows, quotes (row by row from there), blanks."""
    rng = random.Random(seed)
    rows = sales_rows(1, rng.randint(50, 1500), seed=seed)
    for _ in range(rng.randint(0, 6)):
        i = rng.randrange(len(rows))
        rows[i] = rng.choice(
            [
                f"{rng.randint(2**53, INT64_MAX)},1,1,1,2024-01-02,{rng.randint(0, 999)}.125,North",
                f"{i + 1},1,1,1,2024-01-02,0.125,South",
                f"{i + 1},1,1,0,2024-01-02,1.00,North",  # quantity below its minimum
                f"x{i},1,1,1,2024-01-02,1.00,North",
                f"{i + 1},1,1,1,2024-02-30,1.00,East",
                f'{i + 1},1,1,1,2024-01-02,1.00,"West"',
                f"{i + 1},1,1,1,2024-01-02,1.00,Mars",
                "",
            ]
        )
    for _ in range(rng.randint(0, 4)):  # re-sent rows, anywhere after their first
        rows.insert(rng.randrange(len(rows) + 1), rng.choice(rows) or rows[0])
    return rows


@pytest.mark.parametrize("seed", range(12))
def test_one_pass_gives_exactly_what_the_two_stages_give(seed: int, tmp_path: Path) -> None:
    data = sales_csv(corpus(seed))
    rng = random.Random(seed)
    chunks = {"chunk_bytes": rng.choice([2048, 8192, 1 << 20]), "chunk_rows": rng.choice([64, 500])}
    assert one_pass(data, tmp_path, **chunks) == two_stages(data, tmp_path, **chunks)


def test_a_plain_file_stays_in_arrow_and_keeps_exact_values(tmp_path: Path) -> None:
    rows = [f"{10**17 + i},1,1,1,2024-01-02,{i}.00,North" for i in range(1, 2001)]
    rows.append(rows[0])
    (checked,) = [check(sales_csv(rows), SALES)]
    assert checked.arrow is not None, "a plain file is checked by the fast path, whole"
    assert checked.arrow.schema.field("sale_amount").type == pa.decimal128(14, 2)
    assert to_arrow(checked.good, SALES).equals(checked.arrow)  # pandas only when asked for
    clean, rejects, counts = one_pass(sales_csv(rows), tmp_path)
    assert counts == (2001, 2001, 0, 2000, 1) and rejects == b""
    lines = clean.decode().splitlines()
    assert lines[1] == '100000000000000001,1,1,1,2024-01-02,1.00,"North","f1"'
    assert len(lines) == 1 + 2000


def test_the_arrow_transform_equals_the_pandas_one_chunk_by_chunk() -> None:
    rows = sales_rows(1, 300) + sales_rows(1, 10) + sales_rows(301, 5)
    checked = check(sales_csv(rows), SALES, chunk_bytes=2048)
    assert checked.arrow is None  # several chunks put together: the frame
    arrow_seen, pandas_seen = SeenKeys(SALES.key), SeenKeys(SALES.key)
    for chunk in (rows[:120], rows[120:300], rows[300:]):
        part = check(sales_csv(chunk), SALES)
        assert part.arrow is not None
        fast = transform_arrow(part.arrow, SALES, arrow_seen)
        slow = transform(part.good, SALES, pandas_seen)
        assert fast is not None and fast.duplicates_removed == slow.duplicates_removed
        frame = pa.Table.from_pandas(slow.frame, preserve_index=False)
        # The same values and types (pandas' strings come back as large_string: same text).
        assert fast.table.equals(frame.cast(fast.table.schema))


def test_a_file_found_unusable_late_leaves_no_work_file(tmp_path: Path) -> None:
    data = sales_csv(["1,1,1,1,2024-01-02,1,North"] * 5000) + b"\xff\n"
    with pytest.raises(FileRejected, match="not valid utf-8"):
        clean_file(
            io.BytesIO(data), SALES, tmp_path / "c.csv", tmp_path / "r.csv", "f1", chunk_bytes=4096
        )
    assert sorted(tmp_path.iterdir()) == []


def test_a_chunk_of_re_sent_rows_only_is_followed_by_more_chunks() -> None:
    import numpy as np
    import pandas as pd

    seen = SeenKeys(("sale_id",))
    chunks = [[1, 2, 3], [2, 3], [3, 4, 1], [5]]
    firsts = [seen.first_seen(pd.DataFrame({"sale_id": pd.array(c, "Int64")})) for c in chunks]
    assert [f.tolist() for f in firsts] == [[True] * 3, [False] * 2, [False, True, False], [True]]
    assert all(isinstance(f, np.ndarray) for f in firsts)
