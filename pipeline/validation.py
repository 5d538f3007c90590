"""Checking a file against its dataset contract. Pure: bytes in, DataFrames out, no I/O.

Two kinds of outcome:

- the file as a whole is unusable (empty, not text, wrong encoding, header not the contract's,
  no data rows): ``FileRejected`` with the reason — the inbox quarantines the whole file;
- some rows break a rule: they come back as rejects (row, column, rule, value) and the good rows go
  on; over the contract's threshold the inbox quarantines the whole file.

Rows are numbered from 1 for the first data row (the header is line 1 of the file, so row N is
line N + 1 when no field spans lines).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import pandas as pd

from pipeline.datasets import Column, Contract

MAX_FIELD_BYTES = 10 * 1024 * 1024
REJECT_COLUMNS = ["row", "column", "rule", "value"]
_INT = r"^[+-]?\d{1,18}$"
_DECIMAL = r"^[+-]?\d{1,15}(\.\d+)?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"


class FileRejected(ValueError):
    """The whole file is unusable; the message says why (and where, when it can)."""


@dataclass(frozen=True)
class Checked:
    good: pd.DataFrame  # typed columns, index = row number
    rejects: pd.DataFrame  # REJECT_COLUMNS, one line per broken rule
    rows_in: int

    @property
    def rows_rejected(self) -> int:
        return int(self.rejects["row"].nunique()) if len(self.rejects) else 0


def decode(data: bytes, contract: Contract) -> str:
    if not data:
        raise FileRejected("empty file (0 bytes)")
    nul = data.find(b"\x00")
    if nul >= 0:
        raise FileRejected(f"binary content: NUL byte at offset {nul}; not a CSV text file")
    try:
        text = data.decode(contract.encoding)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"not valid {contract.encoding}: byte {exc.start} ({data[exc.start : exc.start + 1]!r})"
        ) from None
    return text.removeprefix("\ufeff")


def parse(data: bytes, contract: Contract) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The file's data rows as strings (index = row number) and rows of the wrong shape."""
    text = decode(data, contract)
    csv.field_size_limit(MAX_FIELD_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=contract.delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise FileRejected(f"unreadable header: {exc}") from None
    if header is None or not any(h.strip() for h in header):
        raise FileRejected("no header line")
    names = [h.strip().lower() for h in header]
    if names != contract.names:
        hint = ""
        if len(names) == 1:
            for sep in (";", "\t", "|", ","):
                if sep != contract.delimiter and sep in names[0]:
                    hint = (
                        f" (wrong delimiter? the header contains {sep!r}, "
                        f"the contract uses {contract.delimiter!r})"
                    )
        raise FileRejected(
            f"header {header[:12]!r} does not match the {contract.dataset} contract "
            f"{contract.names!r}{hint}"
        )
    width = len(names)
    rows: list[list[str]] = []
    numbers: list[int] = []
    bad: list[tuple[int, str, str, str]] = []
    number = 0
    try:
        for number, fields in enumerate(reader, start=1):  # noqa: B007 (used after the loop)
            if len(fields) == width:
                rows.append(fields)
                numbers.append(number)
            elif fields:  # a blank line is not a row
                bad.append(
                    (
                        number,
                        "*",
                        f"shape: {len(fields)} fields, expected {width}",
                        contract.delimiter.join(fields)[:100],
                    )
                )
    except csv.Error as exc:
        raise FileRejected(f"unreadable at row {number + 1}: {exc}") from None
    if not rows and not bad:
        raise FileRejected("header only: no data rows")
    frame = pd.DataFrame(rows, columns=names, index=pd.Index(numbers, name="row"), dtype=object)
    return frame, pd.DataFrame(bad, columns=REJECT_COLUMNS)


def _check_column(values: pd.Series, column: Column) -> tuple[pd.Series, pd.Series]:
    """The typed column and, per row, the first rule it breaks ('' when none)."""
    text = values.astype(str).str.strip()
    rule = pd.Series("", index=values.index, dtype=object)

    def breaks(mask: pd.Series, name: str) -> None:
        if mask.any():  # the common case is a clean column: skip the assignment
            rule.loc[mask & (rule == "")] = name

    empty = text == ""
    if not column.nullable:
        breaks(empty, "not_null")
    breaks(text.str.len() > column.max_length, f"max_length {column.max_length}")
    present = ~empty & (rule == "")
    typed: pd.Series
    if column.type == "int":
        breaks(present & ~text.str.match(_INT), "type: integer")
        typed = pd.to_numeric(text.where(rule == "", None), errors="coerce").astype("Int64")
    elif column.type == "decimal":
        breaks(present & ~text.str.match(_DECIMAL), "type: decimal")
        typed = pd.to_numeric(text.where(rule == "", None), errors="coerce").astype("float64")
    elif column.type == "date":
        shaped = text.str.match(_DATE)
        breaks(present & ~shaped, "type: date (YYYY-MM-DD)")
        typed = pd.to_datetime(text.where(rule == "", None), format="%Y-%m-%d", errors="coerce")
        breaks(present & typed.isna(), "type: date (no such day)")
    else:
        typed = text.where(~empty, None)
        if column.allowed is not None:
            breaks(
                present & ~text.isin(column.allowed),
                f"allowed: {', '.join(sorted(column.allowed))}",
            )
    ok = rule == ""
    if column.min is not None:
        low = pd.Timestamp(column.min) if column.type == "date" else float(column.min)  # type: ignore[arg-type]
        breaks(ok & typed.notna() & (typed < low), f"min {column.min}")
    if column.max is not None:
        high = pd.Timestamp(column.max) if column.type == "date" else float(column.max)  # type: ignore[arg-type]
        breaks((rule == "") & typed.notna() & (typed > high), f"max {column.max}")
    return typed, rule


def check(data: bytes, contract: Contract) -> Checked:
    """Parse and check a file; raise ``FileRejected`` when it is unusable as a whole."""
    frame, rejects = parse(data, contract)
    typed: dict[str, pd.Series] = {}
    found = [rejects]
    broken = pd.Series(False, index=frame.index)
    for column in contract.columns:
        values, rule = _check_column(frame[column.name], column)
        typed[column.name] = values
        bad = rule != ""
        broken |= bad
        if bad.any():
            found.append(
                pd.DataFrame(
                    {
                        "row": frame.index[bad.to_numpy()],
                        "column": column.name,
                        "rule": rule[bad].to_numpy(),
                        "value": frame.loc[bad, column.name]
                        .astype(str)
                        .str.slice(0, 100)
                        .to_numpy(),
                    }
                )
            )
    good = pd.DataFrame(typed, index=frame.index)[~broken.to_numpy()]
    all_rejects = (
        pd.concat([f for f in found if len(f)], ignore_index=True)
        if any(len(f) for f in found)
        else rejects
    )
    rows_in = len(frame) + int(rejects["row"].nunique() if len(rejects) else 0)
    return Checked(
        good=good,
        rejects=all_rejects.sort_values(["row", "column"], kind="stable").reset_index(drop=True),
        rows_in=rows_in,
    )


def reject_share(checked: Checked) -> float:
    return checked.rows_rejected / checked.rows_in if checked.rows_in else 0.0


def describe_rejects(checked: Checked, file_name: str, limit: int = 3) -> str:
    """A clear one-line summary naming the file, rows and rules."""
    head = checked.rejects.head(limit)
    parts = [
        f"row {r.row} column {r.column}: {r.rule} (value {r.value!r})" for r in head.itertuples()
    ]
    more = len(checked.rejects) - len(head)
    return (
        f"{file_name}: {checked.rows_rejected} of {checked.rows_in} rows rejected; "
        + "; ".join(parts)
        + (f"; and {more} more" if more > 0 else "")
    )
