"""Checking a file against its dataset contract. Pure: bytes in, DataFrames out, no I/O.

Two kinds of outcome:

- the file as a whole is unusable (empty, not text, wrong encoding, header not the contract's,
  no data rows): ``FileRejected`` with the reason — the inbox quarantines the whole file;
- some rows break a rule: they come back as rejects (row, column, rule, value) and the good rows go
  on; over the contract's threshold the inbox quarantines the whole file.

Rows are numbered from 1 for the first data row (the header is line 1 of the file, so row N is
line N + 1 when no field spans lines).

Speed: a file in the common shape (the contract's plain header, no quotes, no blank lines) is
parsed by Arrow's CSV reader, and each column is checked with Arrow's compute kernels (the same
regular expressions, in RE2). A column that breaks any rule, and any file not in that shape, goes
through the row-by-row path below, which names every row, column and rule; the fast path accepts
only what that path accepts, with the same typed values (a test holds them equal).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.inbox.contract import Column, Contract

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
    return _parse_text(decode(data, contract), contract)


def _fast_parse(text: str, contract: Contract) -> pa.Table | None:
    """The file as a table of strings when it is in the plain shape, else None."""
    first = text.partition("\n")[0].rstrip("\r")
    if [h.strip().lower() for h in first.split(contract.delimiter)] != contract.names:
        return None
    # Quotes, blank lines and lone carriage returns are the row-by-row parser's to number.
    body = text[len(first) :]
    if '"' in text or "\r" in body.replace("\r\n", "\n") or "\n\n" in body.rstrip("\n"):
        return None
    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(
                use_threads=False, skip_rows=1, column_names=contract.names
            ),
            parse_options=pacsv.ParseOptions(delimiter=contract.delimiter, quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in contract.names},
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OverflowError):
        return None
    return table if table.num_rows else None


def _parse_text(text: str, contract: Contract) -> tuple[pd.DataFrame, pd.DataFrame]:
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


_ARROW_TYPES = {"int": pa.int64(), "decimal": pa.float64(), "date": pa.date32()}
_PATTERNS = {"int": _INT, "decimal": _DECIMAL, "date": _DATE}
_PANDAS_TYPES = {"int": "Int64", "decimal": "float64", "date": "datetime64[us]", "str": "str"}


def _fast_column(values: pa.ChunkedArray, column: Column, index: pd.Index) -> pd.Series | None:
    """The typed column when every value keeps every rule, else None (the slow path decides)."""
    text = pc.utf8_trim_whitespace(values)
    length = pc.utf8_length(text)
    empty = pc.equal(length, 0)
    if pc.any(empty).as_py() and not column.nullable:
        return None
    if pc.max(length).as_py() > column.max_length:
        return None
    present = pc.if_else(empty, pa.scalar(None, pa.string()), text)
    if column.type in _PATTERNS:
        if pc.any(pc.invert(pc.match_substring_regex(present, _PATTERNS[column.type]))).as_py():
            return None
        try:
            typed = pc.cast(present, _ARROW_TYPES[column.type])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None  # e.g. a day that does not exist
        bounds = (
            [pa.scalar(b, typed.type) for b in (column.min, column.max)]
            if column.type == "date"
            else [None if b is None else float(b) for b in (column.min, column.max)]  # type: ignore[arg-type]
        )
        low, high = bounds
        if column.min is not None and pc.any(pc.less(typed, low)).as_py():
            return None
        if column.max is not None and pc.any(pc.greater(typed, high)).as_py():
            return None
    else:
        typed = present
        if column.allowed is not None:
            inside = pc.is_in(present, value_set=pa.array(sorted(column.allowed)))
            if not pc.all(pc.or_(inside, empty)).as_py():
                return None
    series = typed.to_pandas().astype(_PANDAS_TYPES[column.type])
    series.index = index
    return series.rename(column.name)


def check(data: bytes, contract: Contract, fast: bool = True) -> Checked:
    """Parse and check a file; raise ``FileRejected`` when it is unusable as a whole."""
    text = decode(data, contract)
    table = _fast_parse(text, contract) if fast else None
    typed: dict[str, pd.Series] = {}
    if table is not None:
        index = pd.RangeIndex(1, table.num_rows + 1, name="row")
        for column in contract.columns:
            series = _fast_column(table[column.name], column, index)
            if series is not None:
                typed[column.name] = series
        # Only the columns that broke a rule are read again, row by row, to name the rows.
        slow = [n for n in contract.names if n not in typed]
        frame = pd.DataFrame(
            {n: table[n].to_numpy(zero_copy_only=False) for n in slow}, index=index, dtype=object
        )
        rejects = pd.DataFrame(
            {c: pd.Series(dtype="int64" if c == "row" else object) for c in REJECT_COLUMNS}
        )
    else:
        frame, rejects = _parse_text(text, contract)
    found = [rejects]
    broken = pd.Series(False, index=frame.index)
    for column in contract.columns:
        if column.name in typed:
            continue
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
    good = pd.DataFrame({n: typed[n] for n in contract.names}, index=frame.index)[
        ~broken.to_numpy()
    ]
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
