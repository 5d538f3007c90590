"""Reprocessing history on Spark: archived raw weekly files (gzip CSV) of a range of weeks are
cleaned into Parquet — one row per sale_id (the first in archive order), exact types (amounts
decimal(14, 2), dates, 64-bit integers) — and the rows that break a rule are kept apart with
the rule. Checked against an independent computation in Python."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import luigi
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from demo.sales_generator import SalesSpec, file_name, write_year
from pipeline.sales.spark import HISTORY_COLUMNS
from pipeline.sales.tasks import CleanSalesHistory, archived_files

pytestmark = pytest.mark.integration

SPEC = SalesSpec(total_orders=3_000, weeks=3, products=15, missing_weeks=(), seed=9)
START, END = SPEC.week_start(1), SPEC.week_start(2)
HEADER = "sale_id,customer_id,product_id,quantity,sale_date,sale_amount,region"
DAY = "2023-09-13"
# A corrected re-delivery of week 2's South file: new rows, two rows rounded, six broken.
CORRECTION = [
    f"80000001,1,3,2,{DAY},12.345,South",  # rounds half up to 12.35
    f"80000002,1,3,2,{DAY},12.005,South",  # to 12.01
    f"80000003,1,3,1,{DAY},7.00,South",
    f"x80000004,1,3,1,{DAY},7.00,South",  # sale_id: type
    "80000005,1,3,1,2023-02-30,7.00,South",  # sale_date: no such day
    f"80000006,1,3,1,{DAY},7.00,Nowhere",  # region: allowed
    f"80000007,1,3,1,{DAY},,South",  # sale_amount: not_null
    f"80000008,1,3,1,{DAY},-1.00,South",  # sale_amount: min
    f"80000009,1,3,1,{DAY},7.00,South,extra",  # a field too many
]
BROKEN = 6


def archive(root: Path, day: str, file_id: str, name: str, text: str) -> Path:
    path = root / "archive" / day / f"{file_id}__{name}.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode(), mtime=0))
    return path


@pytest.fixture
def archived(stack: None, runtime: Path, tmp_path: Path) -> list[Path]:
    raw = tmp_path / "raw"
    write_year(raw, SPEC)
    for number, path in enumerate(sorted(raw.iterdir()), start=1):
        archive(runtime, "2024/01/02", f"f{number:04d}", path.name, path.read_text())
    # A re-delivery of week 1's first file, archived later: every row a duplicate.
    first = sorted(raw.glob(f"{file_name(START, 'North')}"))[0]
    archive(runtime, "2024/01/05", "f9001", first.name, first.read_text())
    south = file_name(END, "South")
    archive(runtime, "2024/01/06", "f9002", south, "\n".join([HEADER, *CORRECTION]) + "\n")
    return archived_files(START, END)


def expected(files: list[Path]) -> dict[int, dict[str, object]]:
    """The clean rows computed in Python: valid rows, the first of each sale_id wins."""
    rows: dict[int, dict[str, object]] = {}
    for path in files:
        file_id = path.name.partition("__")[0]
        for record in csv.reader(io.StringIO(gzip.decompress(path.read_bytes()).decode())):
            if record[0] == "sale_id" or len(record) != 7:
                continue
            sale_id, customer, product, quantity, day, amount, region = record
            if not sale_id.isdigit() or region not in {"North", "South", "East", "West"}:
                continue
            try:
                date = dt.date.fromisoformat(day)
                value = Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
            except (ValueError, ArithmeticError):
                continue
            if value < 0 or int(sale_id) in rows:
                continue
            rows[int(sale_id)] = {
                "sale_id": int(sale_id),
                "customer_id": int(customer),
                "product_id": int(product),
                "quantity": int(quantity),
                "sale_date": date,
                "sale_amount": value,
                "region": region,
                "file_id": file_id,
            }
    return rows


def test_a_range_of_archived_weeks_is_cleaned_into_exact_parquet(
    archived: list[Path], runtime: Path
) -> None:
    names = {path.name.partition("__")[2] for path in archived}
    assert len(archived) == 10 and file_name(SPEC.week_start(3), "North") + ".gz" not in names
    task = CleanSalesHistory(start=START, end=END)
    assert luigi.build([task], local_scheduler=True, log_level="WARNING")

    folder = runtime / "sales" / "history" / f"{START}--{END}"
    table = pq.read_table(folder / "clean")
    assert table.schema.names == list(HISTORY_COLUMNS)
    types = dict(zip(table.schema.names, table.schema.types, strict=True))
    assert types["sale_amount"] == pa.decimal128(14, 2)
    assert types["sale_date"] == pa.date32()
    assert all(types[name] == pa.int64() for name in ("sale_id", "customer_id", "quantity"))

    got = {row["sale_id"]: row for row in table.to_pylist()}
    want = expected(archived)
    assert len(got) == len(table) == len(want)  # one row per sale_id
    assert got == want
    assert got[80000001]["sale_amount"] == Decimal("12.35")
    assert got[80000002]["sale_amount"] == Decimal("12.01")

    rejects = pq.read_table(folder / "rejects").to_pylist()
    assert sorted(r["rule"] for r in rejects) == sorted(
        [
            "row: wrong number of fields",
            "sale_amount: min 0",
            "sale_amount: not_null",
            "region: allowed: East, North, South, West",
            "sale_date: type: date (no such day)",
            "sale_id: type: integer",
        ]
    )
    assert all(r["source"].endswith(f"f9002__{file_name(END, 'South')}.gz") for r in rejects)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["rejected"] == BROKEN and summary["written"] == len(want)
    assert summary["duplicates"] > 0 and summary["application_id"].startswith("local-")
    assert task.complete()  # a rerun does nothing


def test_no_archived_files_for_the_weeks_fails_naming_them(stack: None, runtime: Path) -> None:
    result = luigi.build(
        [CleanSalesHistory(start=START, end=END)],
        local_scheduler=True,
        detailed_summary=True,
        log_level="CRITICAL",
    )
    assert result.status.name == "FAILED"
