"""Checking a file against its dataset contract. Pure: a byte stream in, DataFrames out.

Two kinds of outcome:

- the file as a whole is unusable (empty, not text, wrong encoding, header not the contract's,
  no data rows, a line longer than any row can be): ``FileRejected`` with the reason — the inbox
  quarantines the whole file;
- some rows break a rule: they come back as rejects (row, column, rule, value) and the good rows go
  on; over the contract's threshold the inbox quarantines the whole file.

Rows are numbered from 1 for the first data row (the header is line 1 of the file, so row N is
line N + 1 when no field spans lines).

Values are exact: an integer is parsed as an integer (int64; pandas ``Int64``; outside int64 it
is a bad row), a decimal as a decimal (Arrow ``decimal128(precision, scale)``, brought to the
column's scale by its rounding rule — half-up or a bad row), never through float. Only ASCII
digits are digits (``\\d`` would also take ``١٢٣`` or ``１２``).

Memory is bounded: the file is read in pieces of whole lines (about ``CHUNK_BYTES``) and checked
piece by piece (``check_stream`` yields one ``Checked`` per chunk); the row-by-row path holds at
most ``CHUNK_ROWS`` rows at a time.

Speed: a piece in the common shape (no quotes, blank lines or lone carriage returns, after the
contract's plain header) is parsed by Arrow's CSV reader, and each column is checked with Arrow's
compute kernels (the same regular expressions, in RE2). A column that breaks any rule, and any
piece not in that shape, goes through the row-by-row path below, which names every row, column
and rule; from the first quote on, the rest of the file does (a quoted field may span lines, so
pieces cut at line ends are no longer whole rows). The fast path accepts only what that path
accepts, with the same typed values (a property test holds them equal).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.inbox.contract import INT64_MAX, INT64_MIN, Column, Contract

MAX_FIELD_BYTES = 10 * 1024 * 1024
# Bytes read at a time (pieces are cut at the last line end) and rows the row-by-row path checks
# at a time: together they bound the memory a check needs, whatever the file's size.
CHUNK_BYTES = 8 * 1024 * 1024
CHUNK_ROWS = 200_000
REJECT_COLUMNS = ["row", "column", "rule", "value"]
# ASCII digits only: Python's and RE2's \d may take other scripts' digits.
_INT = r"^[+-]?[0-9]+$"
_DECIMAL = r"^[+-]?[0-9]+(\.[0-9]+)?$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
RULE_INT64 = "range: int64"


class FileRejected(ValueError):
    """The whole file is unusable; the message says why (and where, when it can)."""


class Checked:
    """One chunk checked: the good rows (typed columns, index = row number), the rejects
    (``REJECT_COLUMNS``, one line per broken rule) and how many rows were read.

    A chunk the fast path took whole also carries ``arrow``: its good rows as the contract's
    Arrow types (``arrow_schema``, the work files' types). Then ``good`` is made from it only when
    someone asks: the chain writes and transforms the Arrow table as it is."""

    def __init__(
        self,
        good: pd.DataFrame | None = None,
        rejects: pd.DataFrame | None = None,
        rows_in: int = 0,
        *,
        arrow: pa.Table | None = None,
        first_row: int = 1,
        contract: Contract | None = None,
    ) -> None:
        if good is None and (arrow is None or contract is None):
            raise ValueError("Checked needs the good rows: a frame, or an Arrow table and contract")
        self._good = good
        self.rejects = no_rejects() if rejects is None else rejects
        self.rows_in = rows_in
        self.arrow = arrow
        self._first_row = first_row
        self._contract = contract

    @property
    def good(self) -> pd.DataFrame:
        if self._good is None:
            assert self.arrow is not None and self._contract is not None
            index = pd.RangeIndex(
                self._first_row, self._first_row + self.arrow.num_rows, name="row"
            )
            self._good = pd.DataFrame(
                {
                    c.name: to_pandas(self.arrow.column(c.name), c, index)
                    for c in self._contract.columns
                },
                index=index,
            )
        return self._good

    @property
    def rows_good(self) -> int:
        return (
            self.arrow.num_rows if self._good is None and self.arrow is not None else len(self.good)
        )

    @property
    def rows_rejected(self) -> int:
        return int(self.rejects["row"].nunique()) if len(self.rejects) else 0


_NO_REJECTS = pd.DataFrame(
    {c: pd.Series(dtype="int64" if c == "row" else object) for c in REJECT_COLUMNS}
)


def no_rejects() -> pd.DataFrame:
    return _NO_REJECTS.copy()


@dataclass
class Tally:
    """What a streamed check found, chunk after chunk: the counts and the first rejects (enough
    for the summary line; the reject file has them all)."""

    rows_in: int = 0
    rows_good: int = 0
    rows_rejected: int = 0
    reject_count: int = 0
    head: pd.DataFrame = field(default_factory=no_rejects)
    keep: int = 20

    def add(self, checked: Checked) -> None:
        self.rows_in += checked.rows_in
        self.rows_good += checked.rows_good
        self.rows_rejected += checked.rows_rejected
        self.reject_count += len(checked.rejects)
        room = self.keep - len(self.head)
        if room > 0 and len(checked.rejects):
            more = checked.rejects.head(room)
            self.head = (
                pd.concat([self.head, more], ignore_index=True)
                if len(self.head)
                else more.reset_index(drop=True)
            )

    @classmethod
    def of(cls, checked: Checked) -> Tally:
        tally = cls(keep=len(checked.rejects))
        tally.add(checked)
        return tally


# -- the typed form of a contract's rows (also the work file's, by Arrow) ----------------------
def arrow_type(column: Column) -> pa.DataType:
    if column.type == "decimal":
        return pa.decimal128(column.precision, column.scale)
    return {"int": pa.int64(), "date": pa.date32(), "str": pa.string()}[column.type]


def arrow_schema(contract: Contract) -> pa.Schema:
    return pa.schema([pa.field(c.name, arrow_type(c)) for c in contract.columns])


def pandas_dtype(column: Column) -> str | pd.ArrowDtype:
    if column.type == "decimal":
        return pd.ArrowDtype(arrow_type(column))
    return {"int": "Int64", "date": "datetime64[us]", "str": "str"}[column.type]


def to_pandas(values: pa.Array | pa.ChunkedArray, column: Column, index: pd.Index) -> pd.Series:
    """Arrow values of a column as the typed pandas column ``check`` gives (exact: an int64 with
    a null stays an integer, a decimal stays a decimal)."""
    if column.type == "int":
        series = values.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    elif column.type == "decimal":
        series = pd.Series(pd.arrays.ArrowExtensionArray(values))
    else:
        series = values.to_pandas().astype(pandas_dtype(column))
    series.index = index
    return series.rename(column.name)


def to_arrow(frame: pd.DataFrame, contract: Contract) -> pa.Table:
    """Typed rows (as ``check`` gives them) as an Arrow table of the contract's exact types."""
    arrays = []
    for column in contract.columns:
        values = frame[column.name]
        if column.type == "date":
            arrays.append(pa.array(values, type=pa.timestamp("us")).cast(pa.date32()))
        else:
            arrays.append(pa.array(values, type=arrow_type(column), from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=arrow_schema(contract))


def from_arrow(table: pa.Table | pa.RecordBatch, contract: Contract) -> pd.DataFrame:
    """Rows of a work file back as ``check`` gave them (the same dtypes)."""
    index = pd.RangeIndex(table.num_rows)
    return pd.DataFrame(
        {c.name: to_pandas(table.column(c.name), c, index) for c in contract.columns}, index=index
    )


# -- reading: pieces of whole lines, checked as text ------------------------------------------
def max_line_bytes(contract: Contract) -> int:
    """No row of the contract can be longer than this (every field at the csv module's limit)."""
    return len(contract.columns) * (MAX_FIELD_BYTES + 3)


def _pieces(source: BinaryIO, contract: Contract, chunk_bytes: int) -> Iterator[bytes]:
    """The stream in pieces of whole lines (the last may lack its line end), each checked: no NUL
    byte, valid in the contract's encoding (whose line end must be the byte ``\\n``: UTF-8 and
    the other ASCII-compatible encodings). A byte-order mark at the start is dropped."""
    bom = "\ufeff".encode(contract.encoding)
    limit = max_line_bytes(contract)
    carry = b""
    offset = 0  # of carry[0] in the file
    first = True
    while block := source.read(chunk_bytes):
        nul = block.find(b"\x00")
        if nul >= 0:
            raise FileRejected(
                f"binary content: NUL byte at offset {offset + len(carry) + nul};"
                " not a CSV text file"
            )
        buffer = carry + block if carry else block
        cut = buffer.rfind(b"\n") + 1
        if cut == 0:
            if len(buffer) > limit:
                raise FileRejected(
                    f"no line end in {len(buffer):,} bytes from offset {offset}: longer than"
                    f" any row of the {contract.dataset} contract can be ({limit:,} bytes)"
                )
            carry = buffer
            continue
        piece, carry = buffer[:cut], buffer[cut:]
        yield _decodable(piece, offset, contract, bom if first else b"")
        first = False
        offset += cut
    if carry:
        yield _decodable(carry, offset, contract, bom if first else b"")
    elif first:
        raise FileRejected("empty file (0 bytes)")


def _decodable(piece: bytes, offset: int, contract: Contract, bom: bytes) -> bytes:
    try:
        piece.decode(contract.encoding)
    except UnicodeDecodeError as exc:
        raise FileRejected(
            f"not valid {contract.encoding}: byte {offset + exc.start}"
            f" ({piece[exc.start : exc.start + 1]!r})"
        ) from None
    return piece[len(bom) :] if bom and piece.startswith(bom) else piece


def _lines(first: bytes, rest: Iterable[bytes], encoding: str) -> Iterator[str]:
    """Lines as the csv module wants them (``newline=''``: line ends kept, ``\\r`` seen)."""
    yield from io.StringIO(first.decode(encoding), newline="")
    for piece in rest:
        yield from io.StringIO(piece.decode(encoding), newline="")


def _plain(piece: bytes) -> bool:
    """Whole rows, one a line, that Arrow numbers exactly as the row-by-row path does."""
    body = piece.rstrip(b"\r\n")
    return (
        bool(body)
        and b'"' not in piece
        and piece.count(b"\r") == piece.count(b"\r\n")
        and not body.startswith((b"\n", b"\r\n"))
        and b"\n\n" not in body
        and b"\n\r\n" not in body
    )


def _whole_header(line: bytes, contract: Contract) -> bool:
    """Is this first line the contract's header, whole (quoted names are fine, a quoted name
    running on to the next line is not)? Then the rows start on the next line."""
    text = line.decode(contract.encoding)
    if "\r" in text.removesuffix("\r"):
        return False
    try:
        fields = next(
            csv.reader([text.removesuffix("\r")], delimiter=contract.delimiter, strict=True)
        )
    except csv.Error:
        return False
    return [h.strip().lower() for h in fields] == contract.names


def _line_count(piece: bytes) -> int:
    return piece.count(b"\n") + (0 if piece.endswith(b"\n") else 1)


def check_stream(
    source: BinaryIO,
    contract: Contract,
    fast: bool = True,
    chunk_bytes: int | None = None,
    chunk_rows: int | None = None,
) -> Iterator[Checked]:
    """Check a file as it is read, one ``Checked`` per chunk (rows numbered in the whole file);
    raise ``FileRejected`` when it is unusable as a whole — possibly after some chunks, so a
    caller writes what it gets somewhere it can throw away. Chunks: ``CHUNK_BYTES`` and
    ``CHUNK_ROWS`` unless given."""
    csv.field_size_limit(MAX_FIELD_BYTES)
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    chunk_rows = chunk_rows or CHUNK_ROWS
    rows = 0
    for checked in _check_pieces(source, contract, fast, chunk_bytes, chunk_rows):
        rows += checked.rows_in
        yield checked
    if rows == 0:
        raise FileRejected("header only: no data rows")


def _check_pieces(
    source: BinaryIO, contract: Contract, fast: bool, chunk_bytes: int, chunk_rows: int
) -> Iterator[Checked]:
    encoding = contract.encoding
    pieces = _pieces(source, contract, chunk_bytes)
    first = next(pieces)
    header, newline, body = first.partition(b"\n")
    if not (fast and newline and _whole_header(header, contract)):
        yield from _checked_rows(
            _lines(first, pieces, encoding), contract, chunk_rows, chunk_bytes, header=True
        )
        return
    number = 0  # rows so far (blank lines count: the row-by-row path numbers them too)
    piece: bytes | None = body
    while piece is not None:
        if b'"' in piece:  # from here on a row may span pieces: the rest goes row by row
            yield from _checked_rows(
                _lines(piece, pieces, encoding), contract, chunk_rows, chunk_bytes, start=number
            )
            return
        checked = _fast_piece(piece, number, contract) if _plain(piece) else None
        if checked is not None:
            yield checked
            number += _line_count(piece)
        elif piece:
            number = yield from _checked_rows(
                io.StringIO(piece.decode(encoding), newline=""),
                contract,
                chunk_rows,
                chunk_bytes,
                start=number,
            )
        piece = next(pieces, None)


# -- the row-by-row path -----------------------------------------------------------------------
def _read_header(reader: Iterator[list[str]], contract: Contract) -> None:
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


def _checked_rows(
    lines: Iterable[str],
    contract: Contract,
    chunk_rows: int,
    chunk_bytes: int,
    *,
    header: bool = False,
    start: int = 0,
) -> Generator[Checked, None, int]:
    """Parse lines with the csv module and check them ``chunk_rows`` rows at a time; return the
    number of the last row read (blank lines are numbered, not checked)."""
    reader = csv.reader(lines, delimiter=contract.delimiter, strict=True)
    if header:
        _read_header(reader, contract)
    width = len(contract.names)
    rows: list[list[str]] = []
    numbers: list[int] = []
    bad: list[tuple[int, str, str, str]] = []
    size = 0
    number = start
    try:
        for fields in reader:
            number += 1
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
            else:
                continue
            size += sum(map(len, fields))
            if len(rows) + len(bad) >= chunk_rows or size >= chunk_bytes:
                yield _checked_chunk(rows, numbers, bad, contract)
                rows, numbers, bad, size = [], [], [], 0
    except csv.Error as exc:
        raise FileRejected(f"unreadable at row {number + 1}: {exc}") from None
    if rows or bad:
        yield _checked_chunk(rows, numbers, bad, contract)
    return number


def _checked_chunk(
    rows: list[list[str]],
    numbers: list[int],
    bad: list[tuple[int, str, str, str]],
    contract: Contract,
) -> Checked:
    frame = pd.DataFrame(
        rows,
        columns=contract.names,
        index=pd.Index(numbers, name="row", dtype="int64"),
        dtype=object,
    )
    return _check_frame(frame, pd.DataFrame(bad, columns=REJECT_COLUMNS), contract, {})


def _exact_int(text: str, column: Column) -> tuple[int | None, str]:
    """An integer (ASCII digits, checked) as a Python int: exact at any length; int64 or a rule."""
    number = int(text)
    if not INT64_MIN <= number <= INT64_MAX:
        return None, RULE_INT64
    if column.min is not None and number < column.min:  # type: ignore[operator]
        return None, f"min {column.min}"
    if column.max is not None and number > column.max:  # type: ignore[operator]
        return None, f"max {column.max}"
    return number, ""


def _exact_decimal(text: str, column: Column) -> tuple[Decimal | None, str]:
    """A decimal (ASCII digits, checked) at the column's scale by its rounding rule; a rule when
    it breaks one."""
    value = Decimal(text)  # exact: a Decimal is built from the digits, not through float
    with localcontext() as ctx:
        ctx.prec = len(text) + column.scale + 2  # room for every digit: quantize never rounds
        exact = value.quantize(Decimal(1).scaleb(-column.scale), rounding=ROUND_HALF_UP)
    if exact != value and column.rounding == "reject":
        return None, f"scale: more than {column.scale} decimal places"
    if exact.copy_abs() >= Decimal(10) ** (column.precision - column.scale):
        return None, f"range: numeric({column.precision}, {column.scale})"
    if column.min is not None and exact < column.min:  # type: ignore[operator]
        return None, f"min {column.min}"
    if column.max is not None and exact > column.max:  # type: ignore[operator]
        return None, f"max {column.max}"
    return exact, ""


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
    if column.type in ("int", "decimal"):
        is_int = column.type == "int"
        shaped = text.str.fullmatch(_INT if is_int else _DECIMAL).astype(bool)
        breaks(present & ~shaped, "type: integer" if is_int else "type: decimal")
        exact = _exact_int if is_int else _exact_decimal
        found: list[object] = [None] * len(text)
        rules = rule.to_numpy(copy=True)
        texts = text.tolist()  # plain str: indexing a pandas string column one by one is slow
        for i in np.flatnonzero((present & (rule == "")).to_numpy()):
            value, broken = exact(texts[i], column)
            if broken:
                rules[i] = broken
            else:
                found[i] = value
        rule = pd.Series(rules, index=values.index, dtype=object)
        array = pa.array(found, type=arrow_type(column))
        typed = to_pandas(array, column, values.index)
    elif column.type == "date":
        shaped = text.str.fullmatch(_DATE).astype(bool)
        breaks(present & ~shaped, "type: date (YYYY-MM-DD)")
        typed = pd.to_datetime(
            text.where(rule == "", None), format="%Y-%m-%d", errors="coerce"
        ).astype(pandas_dtype(column))  # all empty: pandas would pick seconds
        breaks(present & typed.isna(), "type: date (no such day)")
        if column.min is not None:
            low = pd.Timestamp(column.min)
            breaks((rule == "") & typed.notna() & (typed < low), f"min {column.min}")
        if column.max is not None:
            high = pd.Timestamp(column.max)
            breaks((rule == "") & typed.notna() & (typed > high), f"max {column.max}")
    else:
        typed = text.where(~empty, None)
        if column.allowed is not None:
            breaks(
                present & ~text.isin(column.allowed),
                f"allowed: {', '.join(sorted(column.allowed))}",
            )
    return typed, rule


def _check_frame(
    frame: pd.DataFrame, rejects: pd.DataFrame, contract: Contract, typed: dict[str, pd.Series]
) -> Checked:
    """Check the columns not yet typed (``typed`` holds those the fast path took) row by row."""
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
    kept = [f for f in found if len(f)]
    all_rejects = pd.concat(kept, ignore_index=True) if kept else no_rejects()
    rows_in = len(frame) + int(rejects["row"].nunique() if len(rejects) else 0)
    return Checked(
        good=good,
        rejects=all_rejects.sort_values(["row", "column"], kind="stable").reset_index(drop=True),
        rows_in=rows_in,
    )


# -- the fast path -----------------------------------------------------------------------------
def _fast_piece(piece: bytes, start: int, contract: Contract) -> Checked | None:
    """A plain piece parsed by Arrow and checked column by column; None when Arrow cannot read
    it as rows of the contract's width (the row-by-row path then names what is wrong)."""
    body = piece.rstrip(b"\r\n")
    expected = _line_count(body)
    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=contract.names),
            parse_options=pacsv.ParseOptions(delimiter=contract.delimiter, quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in contract.names},
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OverflowError):
        return None
    if table.num_rows != expected:
        return None
    arrays: dict[str, pa.ChunkedArray] = {}
    for column in contract.columns:
        array = _fast_typed(table[column.name], column)
        if array is not None:
            arrays[column.name] = array
    if len(arrays) == len(contract.columns):
        # Every column kept every rule: the rows stay in Arrow (pandas only if asked for).
        return Checked(
            rows_in=expected,
            arrow=pa.Table.from_arrays(list(arrays.values()), schema=arrow_schema(contract)),
            first_row=start + 1,
            contract=contract,
        )
    index = pd.RangeIndex(start + 1, start + expected + 1, name="row")
    typed = {name: to_pandas(array, contract.column(name), index) for name, array in arrays.items()}
    # Only the columns that broke a rule are read again, row by row, to name the rows.
    slow = [n for n in contract.names if n not in typed]
    frame = pd.DataFrame(
        {n: table[n].to_numpy(zero_copy_only=False) for n in slow}, index=index, dtype=object
    )
    return _check_frame(frame, no_rejects(), contract, typed)


def _all_match(values: pa.ChunkedArray, pattern: str) -> bool:
    return not pc.any(pc.invert(pc.match_substring_regex(values, pattern))).as_py()


def _within(typed: pa.ChunkedArray, column: Column) -> bool:
    if column.min is not None and pc.any(pc.less(typed, pa.scalar(column.min, typed.type))).as_py():
        return False
    high = column.max
    return high is None or not pc.any(pc.greater(typed, pa.scalar(high, typed.type))).as_py()


def _fast_int(present: pa.ChunkedArray, column: Column) -> pa.ChunkedArray | None:
    if not _all_match(present, _INT):
        return None
    # Arrow parses int64 exactly (out of range: an error, so the row-by-row path names the row).
    return pc.cast(pc.replace_substring_regex(present, r"^\+", ""), pa.int64())


def _fast_decimal(present: pa.ChunkedArray, column: Column) -> pa.ChunkedArray | None:
    if not _all_match(present, _DECIMAL):
        return None
    length = pc.utf8_length(present)
    dot = pc.find_substring(present, ".")
    has_dot = pc.greater_equal(dot, 0)
    sign = pc.cast(pc.match_substring_regex(present, r"^[+-]"), pa.int32())
    places = pc.max(pc.if_else(has_dot, pc.subtract(pc.subtract(length, dot), 1), 0)).as_py()
    digits = pc.max(pc.subtract(pc.if_else(has_dot, dot, length), sign)).as_py()
    places, digits = places or 0, digits or 0
    scale = max(places, column.scale)
    if digits + scale + 1 > 38:  # beyond decimal128: the row-by-row path decides
        return None
    # Wide enough for every digit (and a carry from rounding): the cast itself is exact.
    wide = pc.cast(present, pa.decimal128(digits + scale + 1, scale))
    if places > column.scale:
        # Half-up as the contract means it (a tie away from zero) is Arrow's half_towards_infinity.
        rounded = pc.round(wide, ndigits=column.scale, round_mode="half_towards_infinity")
        if column.rounding == "reject" and pc.any(pc.not_equal(rounded, wide)).as_py():
            return None
        wide = rounded
    # Raises when a value does not fit numeric(precision, scale): the row-by-row path names it.
    return pc.cast(wide, arrow_type(column))


def _fast_typed(values: pa.ChunkedArray, column: Column) -> pa.ChunkedArray | None:
    """The column as the contract's Arrow type when every value keeps every rule, else None (the
    slow path decides)."""
    text = pc.utf8_trim_whitespace(values)
    length = pc.utf8_length(text)
    empty = pc.equal(length, 0)
    if pc.any(empty).as_py() and not column.nullable:
        return None
    if (pc.max(length).as_py() or 0) > column.max_length:
        return None
    present = pc.if_else(empty, pa.scalar(None, pa.string()), text)
    typed: pa.ChunkedArray | None
    try:
        if column.type == "int":
            typed = _fast_int(present, column)
        elif column.type == "decimal":
            typed = _fast_decimal(present, column)
        elif column.type == "date":
            typed = pc.cast(present, pa.date32()) if _all_match(present, _DATE) else None
        else:
            typed = present
            if column.allowed is not None:
                inside = pc.is_in(present, value_set=pa.array(sorted(column.allowed)))
                if not pc.all(pc.or_(inside, empty)).as_py():
                    return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # e.g. a day that does not exist, an int beyond int64
    if typed is None:
        return None
    if column.type != "str" and not _within(typed, column):
        return None
    return typed


# -- the whole file at once (tests, small files) -----------------------------------------------
def check(
    data: bytes,
    contract: Contract,
    fast: bool = True,
    chunk_bytes: int | None = None,
    chunk_rows: int | None = None,
) -> Checked:
    """Parse and check a file held in memory; raise ``FileRejected`` when it is unusable as a
    whole. The same result as ``check_stream``'s chunks put together."""
    parts = list(check_stream(io.BytesIO(data), contract, fast, chunk_bytes, chunk_rows))
    if len(parts) == 1:
        return parts[0]
    kept = [p.rejects for p in parts if len(p.rejects)]
    return Checked(
        good=pd.concat([p.good for p in parts]),
        rejects=pd.concat(kept, ignore_index=True) if kept else no_rejects(),
        rows_in=sum(p.rows_in for p in parts),
    )


def reject_share(checked: Checked | Tally) -> float:
    return checked.rows_rejected / checked.rows_in if checked.rows_in else 0.0


def describe_rejects(checked: Checked | Tally, file_name: str, limit: int = 3) -> str:
    """A clear one-line summary naming the file, rows and rules."""
    tally = checked if isinstance(checked, Tally) else Tally.of(checked)
    head = tally.head.head(limit)
    parts = [
        f"row {r.row} column {r.column}: {r.rule} (value {r.value!r})" for r in head.itertuples()
    ]
    more = tally.reject_count - len(head)
    return (
        f"{file_name}: {tally.rows_rejected} of {tally.rows_in} rows rejected; "
        + "; ".join(parts)
        + (f"; and {more} more" if more > 0 else "")
    )
