"""Checking files against their contract: clear errors naming the row, column and rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.inbox.contract import SALES, contract_for
from pipeline.inbox.transform import transform
from pipeline.inbox.validate import FileRejected, check, describe_rejects, reject_share

HEADER = ",".join(SALES.names)


def csv(*rows: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *rows]) + "\n").encode()


GOOD = "1,10,100,2,2024-01-02,199.98,North"


def test_good_rows_come_out_typed() -> None:
    checked = check(csv(GOOD, "2,11,101,1,2024-01-03,5,South"), SALES)
    assert checked.rows_in == 2 and checked.rows_rejected == 0
    assert checked.good["sale_id"].tolist() == [1, 2]
    assert checked.good["sale_amount"].tolist() == [199.98, 5.0]
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
        ("99999999999999999999,10,100,2,2024-01-02,1,North", "sale_id", "type: integer"),
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


# -- the Arrow fast path must decide exactly as the row-by-row path ----------------------------
TRICKY = {
    "int": [
        "1",
        "42",
        " 7 ",
        "+3",
        "-1",
        "0",
        "",
        "x",
        "1.5",
        "99999999999999999999",
        "1_000",
        "٣",
    ],
    "decimal": [
        "1",
        "199.98",
        " 5.5",
        ".5",
        "5.",
        "-0.01",
        "1e3",
        "",
        "nan",
        "inf",
        "12345678901234567",
    ],
    "date": [
        "2024-01-02",
        " 2024-02-29",
        "2023-02-29",
        "1999-12-31",
        "2100-01-02",
        "02/01/2024",
        "",
    ],
    "str": ["North", " South ", "Mars", "", "north", "Eäst"],
}


def _same_outcome(data: bytes) -> None:
    fast, slow = check(data, SALES), check(data, SALES, fast=False)
    assert fast.rows_in == slow.rows_in
    assert fast.rejects.values.tolist() == slow.rejects.values.tolist()
    assert fast.good.index.tolist() == slow.good.index.tolist()
    for name in SALES.names:
        assert fast.good[name].dtype == slow.good[name].dtype, name
        assert fast.good[name].astype(object).where(fast.good[name].notna(), None).tolist() == (
            slow.good[name].astype(object).where(slow.good[name].notna(), None).tolist()
        ), name


@given(
    st.lists(
        st.tuples(*(st.sampled_from(TRICKY[c.type]) for c in SALES.columns)),
        min_size=1,
        max_size=6,
    )
)
@settings(max_examples=100, deadline=None)
def test_the_fast_path_decides_exactly_as_the_row_by_row_path(rows: list[tuple[str, ...]]) -> None:
    _same_outcome(csv(*(",".join(r) for r in rows)))


def test_the_fast_path_agrees_on_a_generated_week(tmp_path: Path) -> None:
    from demo.sales_generator import SalesSpec, write_year

    write_year(tmp_path, SalesSpec(total_orders=20_000, weeks=2))
    for path in sorted(tmp_path.glob("*.csv")):
        _same_outcome(path.read_bytes())
