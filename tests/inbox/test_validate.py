"""Checking files against their contract: clear errors naming the row, column and rule."""

from __future__ import annotations

import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pipeline.inbox.validate as validate
from pipeline.inbox.contract import INT64_MAX, INT64_MIN, SALES, Column, Contract, contract_for
from pipeline.inbox.transform import transform
from pipeline.inbox.validate import (
    FileRejected,
    check,
    check_stream,
    describe_rejects,
    reject_share,
)

HEADER = ",".join(SALES.names)


def csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


GOOD = "1,10,100,2,2024-01-02,199.98,North"


def test_good_rows_come_out_typed() -> None:
    checked = check(csv(GOOD, "2,11,101,1,2024-01-03,5,South"), SALES)
    assert checked.rows_in == 2 and checked.rows_rejected == 0
    assert checked.good["sale_id"].tolist() == [1, 2]
    assert checked.good["sale_amount"].tolist() == [Decimal("199.98"), Decimal("5.00")]
    assert str(checked.good["sale_date"].dtype).startswith("datetime64")


@pytest.mark.parametrize(
    ("row", "column", "rule"),
    [
        ("x,10,100,2,2024-01-02,1,North", "sale_id", "type: integer"),
        ("0,10,100,2,2024-01-02,1,North", "sale_id", "min 1"),
        (",10,100,2,2024-01-02,1,North", "sale_id", "not_null"),
        ("1,10,100,1001,2024-01-02,1,North", "quantity", "max 1000"),
        ("1,10,100,2,02/01/2024,1,North", "sale_date", "type: date (YYYY-MM-DD)"),
        ("1,10,100,2,2024-02-30,1,North", "sale_date", "type: date (no such day)"),
        ("1,10,100,2,1999-12-31,1,North", "sale_date", "min 2000-01-01"),
        ("1,10,100,2,2024-01-02,-5,North", "sale_amount", "min 0"),
        ("1,10,100,2,2024-01-02,1e9,North", "sale_amount", "type: decimal"),
        ("1,10,100,2,2024-01-02,1,Mars", "region", "allowed: East, North, South, West"),
        ("1,10,100,2,2024-01-02,1,North,extra", "*", "shape: 8 fields, expected 7"),
        ("99999999999999999999,10,100,2,2024-01-02,1,North", "sale_id", "range: int64"),
        ("9223372036854775808,10,100,2,2024-01-02,1,North", "sale_id", "range: int64"),
        ("١٢٣,10,100,2,2024-01-02,1,North", "sale_id", "type: integer"),
        ("１２,10,100,2,2024-01-02,1,North", "sale_id", "type: integer"),
        ("1,10,100,2,2024-01-02,１.５,North", "sale_amount", "type: decimal"),
        ("1,10,100,2,٢٠٢٤-01-02,1,North", "sale_date", "type: date (YYYY-MM-DD)"),
        ("1,10,100,2,2024-01-02,99999999999999.99,North", "sale_amount", "range: numeric(14, 2)"),
    ],
)
def test_each_rule_names_row_column_and_rule(row: str, column: str, rule: str) -> None:
    checked = check(csv(GOOD, row), SALES)
    assert checked.rejects[["row", "column", "rule"]].values.tolist() == [[2, column, rule]]
    assert checked.good.index.tolist() == [1]


def test_huge_fields_are_rejected_not_swallowed() -> None:
    checked = check(csv(GOOD, f"2,10,100,2,2024-01-02,1,{'N' * 1_000_000}"), SALES)
    assert checked.rejects["rule"].tolist() == ["max_length 256"]
    assert len(checked.rejects["value"][0]) == 100  # the report keeps a prefix only


def test_whitespace_is_trimmed_and_a_bom_ignored() -> None:
    checked = check(b"\xef\xbb\xbf" + csv(" 1 , 10,100,2, 2024-01-02 ,199.98, North "), SALES)
    assert checked.rows_rejected == 0 and checked.good["region"].tolist() == ["North"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (bytes(range(256)) * 4, "binary content: NUL byte"),
        ("sale_id,région\n".encode("latin-1"), "not valid utf-8"),
        (csv(header=HEADER.replace(",", ";")), "wrong delimiter? the header contains ';'"),
        (csv(GOOD, header="a,b,c"), "does not match the sales contract"),
        (csv(), "header only: no data rows"),
        (b"\n\n", "no header line"),
        (csv('1,10,100,2,2024-01-02,"unterminated'), "unreadable"),
    ],
)
def test_unusable_files_are_rejected_whole_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(FileRejected, match=reason.replace("?", r"\?")):
        check(data, SALES)


def test_summary_and_share() -> None:
    checked = check(
        csv(GOOD, "x,10,100,2,2024-01-02,1,North", "3,10,100,2,2024-01-02,1,Mars"), SALES
    )
    assert reject_share(checked) == pytest.approx(2 / 3)
    text = describe_rejects(checked, "sales_2024_w01_north.csv")
    assert text.startswith("sales_2024_w01_north.csv: 2 of 3 rows rejected; row 2 column sale_id")


def test_transform_drops_repeated_keys_keeping_the_first() -> None:
    checked = check(csv(GOOD, GOOD, "2,10,100,2,2024-01-02,1.005,North"), SALES)
    result = transform(checked.good, SALES)
    assert result.duplicates_removed == 1
    assert result.frame["sale_id"].tolist() == [1, 2]


def test_file_names_pick_the_contract() -> None:
    found = contract_for("sales_2024_w07_north.csv")
    assert found is not None and found[0] is SALES
    assert found[1] == {"year": "2024", "week": "07", "region": "north"}
    for name in ("sales_2024_w07_north.csv.tmp", "../sales_2024_w07_north.csv", "notes.txt"):
        assert contract_for(name) is None


# -- exact values ------------------------------------------------------------------------------
def test_integers_are_exact_up_to_the_int64_bounds_on_both_paths() -> None:
    ids = ["123456789012345678", str(INT64_MAX), "9007199254740993", "00042", "+7"]
    rows = [f"{i},10,100,2,2024-01-02,1,North" for i in ids]
    for data in (csv(*rows), csv(*rows, "x,10,100,2,2024-01-02,1,North")):  # clean / one bad
        for fast in (True, False):
            checked = check(data, SALES, fast=fast)
            assert checked.good["sale_id"].tolist() == [
                123456789012345678,
                INT64_MAX,
                9007199254740993,
                42,
                7,
            ]
            assert str(checked.good["sale_id"].dtype) == "Int64"


def test_a_value_beyond_int64_is_a_bad_row_naming_row_column_and_rule() -> None:
    wide = Contract(
        dataset="wide",
        pattern=re.compile("wide.csv"),
        columns=(Column("n", "int"), Column("tag", "str")),
        key=("n",),
        pg_table="x.wide",
    )
    data = f"n,tag\n{INT64_MIN},a\n{INT64_MIN - 1},b\n{INT64_MAX},c\n{INT64_MAX + 1},d\n".encode()
    for fast in (True, False):
        checked = check(data, wide, fast=fast)
        assert checked.good["n"].tolist() == [INT64_MIN, INT64_MAX]
        assert checked.rejects.values.tolist() == [
            [2, "n", "range: int64", str(INT64_MIN - 1)],
            [4, "n", "range: int64", str(INT64_MAX + 1)],
        ]


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("0.125", "0.13"),
        ("1.005", "1.01"),
        ("2.675", "2.68"),
        ("0.115", "0.12"),
        ("0.124999999999999999999999", "0.12"),
        ("0.125000000000000000000001", "0.13"),
        ("1.123456789012345678901234567890123456789", "1.12"),
        ("9999999.995", "10000000.00"),
        ("007.5", "7.50"),
        ("+5", "5.00"),
        ("-0.001", "0.00"),
    ],
)
def test_amounts_round_half_up_to_cents_never_through_float(text: str, cents: str) -> None:
    for fast in (True, False):
        checked = check(csv(f"1,10,100,2,2024-01-02,{text},North"), SALES, fast=fast)
        assert checked.rows_rejected == 0
        (amount,) = checked.good["sale_amount"].tolist()
        assert isinstance(amount, Decimal) and amount == Decimal(cents)
        assert str(amount) == cents or amount.is_zero()


def test_a_negative_tie_rounds_away_from_zero() -> None:
    signed = Contract(
        dataset="signed",
        pattern=re.compile("s.csv"),
        columns=(Column("n", "int"), Column("amount", "decimal")),
        key=("n",),
        pg_table="x.signed",
    )
    for fast in (True, False):
        checked = check(b"n,amount\n1,-0.125\n2,-1.005\n3,0.125\n", signed, fast=fast)
        assert checked.good["amount"].tolist() == [
            Decimal("-0.13"),
            Decimal("-1.01"),
            Decimal("0.13"),
        ]


def test_a_contract_can_refuse_extra_decimal_places_instead_of_rounding() -> None:
    strict = Contract(
        dataset="strict",
        pattern=re.compile("s.csv"),
        columns=(Column("n", "int"), Column("rate", "decimal", scale=3, rounding="reject")),
        key=("n",),
        pg_table="x.strict",
    )
    data = b"n,rate\n1,0.125\n2,0.1250\n3,0.12501\n4,7\n"
    for fast in (True, False):
        checked = check(data, strict, fast=fast)
        assert checked.good["rate"].tolist() == [Decimal("0.125"), Decimal("0.125"), Decimal(7)]
        assert checked.rejects.values.tolist() == [
            [3, "rate", "scale: more than 3 decimal places", "0.12501"]
        ]
    assert strict.column("rate").pg_type == "numeric(14, 3)"


def test_non_ascii_digits_are_bad_rows_never_null() -> None:
    rows = [GOOD] * 30 + ["١٢٣,10,100,2,2024-01-02,1,North", "5,１２,100,2,2024-01-02,١.٥,North"]
    for fast in (True, False):
        checked = check(csv(*rows), SALES, fast=fast)
        assert checked.rejects[["row", "column", "rule"]].values.tolist() == [
            [31, "sale_id", "type: integer"],
            [32, "customer_id", "type: integer"],
            [32, "sale_amount", "type: decimal"],
        ]
        assert not checked.good.isna().any().any()


def test_contract_bounds_and_rounding_are_declared_exactly() -> None:
    with pytest.raises(ValueError, match="exact"):
        Column("x", "decimal", min=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rounding"):
        Column("x", "decimal", rounding="banker")
    assert SALES.column("sale_amount").pg_type == "numeric(14, 2)"
    assert SALES.max_bytes == 512 * 1024 * 1024


# -- streaming: bounded chunks, the same result ------------------------------------------------
def test_a_file_is_checked_in_chunks_with_rows_numbered_in_the_whole_file() -> None:
    rows = [f"{i},10,100,2,2024-01-02,{i}.125,North" for i in range(1, 501)]
    rows[99] = "100,10,100,2,2024-01-02,1,Mars"
    rows[300] = '301,10,100,2,2024-01-02,"1\n2",North'  # a quote: row by row from here on
    rows[450] = "451,10,100,2,2024-01-02,x,North"
    data = csv(*rows)
    whole = check(data, SALES, fast=False)
    chunks = list(check_stream(io.BytesIO(data), SALES, chunk_bytes=1024, chunk_rows=40))
    assert len(chunks) > 10
    assert max(c.rows_in for c in chunks) <= 40
    assert sum(c.rows_in for c in chunks) == whole.rows_in == 500
    rejects = [r for c in chunks for r in c.rejects[["row", "column"]].values.tolist()]
    assert rejects == whole.rejects[["row", "column"]].values.tolist()
    assert rejects == [[100, "region"], [301, "sale_amount"], [451, "sale_amount"]]
    good = [v for c in chunks for v in c.good["sale_amount"].tolist()]
    assert good == whole.good["sale_amount"].tolist()
    assert good[0] == Decimal("1.13")


def test_the_row_by_row_path_holds_at_most_a_chunk_of_rows() -> None:
    data = csv(*(f'{i},10,100,2,2024-01-02,1,"North"' for i in range(1, 1001)))
    sizes = [len(c.good) for c in check_stream(io.BytesIO(data), SALES, chunk_rows=64)]
    assert max(sizes) <= 64 and sum(sizes) == 1000


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (b"\x00", "NUL byte at offset"),
        (b"\xff", "not valid utf-8: byte"),
    ],
)
def test_whole_file_errors_late_in_a_big_file_name_the_exact_offset(
    tail: bytes, reason: str
) -> None:
    data = csv(*[GOOD] * 2000)
    with pytest.raises(FileRejected, match=f"{reason} {len(data)}"):
        list(check_stream(io.BytesIO(data + tail + b"\n"), SALES, chunk_bytes=4096))


def test_a_line_longer_than_any_row_is_refused_without_reading_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validate, "MAX_FIELD_BYTES", 100)
    endless = csv(GOOD) + b"1" * 100_000
    with pytest.raises(FileRejected, match="no line end in"):
        list(check_stream(io.BytesIO(endless), SALES, chunk_bytes=1024))


# -- the Arrow fast path must decide exactly as the row-by-row path ----------------------------
TRICKY = {
    "int": [
        "1",
        "42",
        " 7 ",
        "+3",
        "-1",
        "0",
        "-0",
        "007",
        "",
        "x",
        "1.5",
        "1e3",
        "+",
        "-",
        "99999999999999999999",
        "123456789012345678",
        "9007199254740993",  # 2**53 + 1: the first integer a float64 cannot hold
        str(INT64_MAX),
        str(INT64_MAX + 1),
        f"+{INT64_MAX}",
        str(INT64_MIN),
        str(INT64_MIN - 1),
        "0" * 40 + "1",
        "1_000",
        "٣",
        "١٢٣",
        "１２",
    ],
    "decimal": [
        "1",
        "199.98",
        " 5.5",
        ".5",
        "5.",
        "-0.01",
        "-0",
        "-0.001",
        "+5",
        "007.50",
        "1e3",
        "",
        "nan",
        "inf",
        "12345678901234567",
        "0.125",
        "1.005",
        "-0.125",
        "2.675",
        "0.1250000000000000000000001",
        "0.12499999999999999999999999",
        "1.123456789012345678901234567890123456789",
        "9999999.995",
        "10000000.005",
        "999999999999.995",
        "0" * 40 + "12.5",
        "١.٥",
        "１２",
    ],
    "date": [
        "2024-01-02",
        " 2024-02-29",
        "2023-02-29",
        "1999-12-31",
        "2100-01-02",
        "02/01/2024",
        "２０２４-01-02",
        "",
    ],
    "str": ["North", " South ", "Mars", "", "north", "Eäst"],
}

# No bounds, nullable columns, a decimal that refuses extra places: the paths' other branches.
EXACT = Contract(
    dataset="exact",
    pattern=re.compile("exact.csv"),
    columns=(
        Column("n", "int", nullable=True),
        Column("m", "int", min=-5),
        Column("amount", "decimal"),
        Column("strict", "decimal", precision=6, scale=3, rounding="reject", nullable=True),
        Column("day", "date", nullable=True),
        Column("tag", "str", nullable=True),
    ),
    key=("m",),
    pg_table="x.exact",
)


def _same_outcome(data: bytes, contract: Contract = SALES, chunk_bytes: int | None = None) -> None:
    fast = check(data, contract, chunk_bytes=chunk_bytes)
    slow = check(data, contract, fast=False)
    assert fast.rows_in == slow.rows_in
    assert fast.rejects.values.tolist() == slow.rejects.values.tolist()
    assert fast.good.index.tolist() == slow.good.index.tolist()
    for name in contract.names:
        assert fast.good[name].dtype == slow.good[name].dtype, name
        assert fast.good[name].astype(object).where(fast.good[name].notna(), None).tolist() == (
            slow.good[name].astype(object).where(slow.good[name].notna(), None).tolist()
        ), name
    for frame in (fast.good, slow.good):  # exact types only: no float anywhere
        assert not any(str(t).startswith("float") for t in frame.dtypes)


@st.composite
def tricky_files(draw: st.DrawFn) -> tuple[Contract, bytes, int | None]:
    contract = draw(st.sampled_from([SALES, EXACT]))
    rows = draw(
        st.lists(
            st.tuples(*(st.sampled_from(TRICKY[c.type]) for c in contract.columns)),
            min_size=1,
            max_size=6,
        )
    )
    header = ",".join(contract.names)
    data = csv(*(",".join(r) for r in rows), header=header)
    return contract, data, draw(st.sampled_from([None, 7, 64]))  # chunk sizes: whole, tiny


@given(tricky_files())
@settings(max_examples=200, deadline=None)
def test_the_fast_path_decides_exactly_as_the_row_by_row_path(
    case: tuple[Contract, bytes, int | None],
) -> None:
    contract, data, chunk_bytes = case
    _same_outcome(data, contract, chunk_bytes)


def test_the_fast_path_agrees_on_a_generated_week(tmp_path: Path) -> None:
    from demo.sales_generator import SalesSpec, write_year

    write_year(tmp_path, SalesSpec(total_orders=20_000, weeks=2))
    for path in sorted(tmp_path.glob("*.csv")):
        _same_outcome(path.read_bytes())
