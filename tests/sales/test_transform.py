"""The weekly aggregate's definition (``pipeline.sales.transform``) on small frames: exact money,
ties rounded half up, the rank and share within a region, the previous week's amount."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd

from pipeline.sales.contract import AGG_COLUMNS
from pipeline.sales.transform import (
    aggregate_week,
    aggregate_weeks,
    describe_changes,
    monday_of,
    week_prefix,
)

WEEK = dt.date(2024, 1, 15)


def orders(*rows: tuple[str, int, str, dt.date]) -> pd.DataFrame:
    return pd.DataFrame(
        [(region, product, Decimal(amount), day) for region, product, amount, day in rows],
        columns=["region", "product_id", "sale_amount", "sale_date"],
    )


def test_a_week_is_counted_totalled_ranked_and_shared_exactly() -> None:
    week = orders(
        ("North", 901, "0.01", WEEK),
        ("North", 901, "0.02", WEEK),
        ("North", 902, "19000.00", WEEK),
        ("North", 902, "999.97", WEEK),
        ("South", 7, "5.55", WEEK),
    )
    got = aggregate_week(week, orders(("South", 7, "1.00", WEEK)), WEEK)
    assert tuple(got.columns) == AGG_COLUMNS
    d = Decimal
    assert list(got.itertuples(index=False, name=None)) == [
        # 0.015 -> 0.02 and 0.0000015 -> 0.000002: ties half up, no float on the way.
        (WEEK, "North", 901, 2, d("0.03"), d("0.02"), 2, d("0.000002"), None, None),
        (WEEK, "North", 902, 2, d("19999.97"), d("9999.99"), 1, d("0.999999"), None, None),
        (WEEK, "South", 7, 1, d("5.55"), d("5.55"), 1, d("1"), d("1.00"), d("4.55")),
    ]


def test_equal_totals_rank_by_product_id() -> None:
    got = aggregate_week(
        orders(("East", 5, "2.00", WEEK), ("East", 3, "2.00", WEEK)), orders(), WEEK
    )
    assert got[["product_id", "rank_in_region"]].values.tolist() == [[3, 1], [5, 2]]
    assert got["share_of_region"].tolist() == [Decimal("0.5"), Decimal("0.5")]


def test_a_week_without_orders_has_no_rows() -> None:
    assert tuple(aggregate_week(orders(), orders(), WEEK).columns) == AGG_COLUMNS
    assert aggregate_week(orders(), orders(("West", 1, "1.00", WEEK)), WEEK).empty


def test_every_week_of_the_orders_and_its_previous_week() -> None:
    sunday_before = WEEK - dt.timedelta(days=1)
    got = aggregate_weeks(orders(("West", 1, "1.50", sunday_before), ("West", 1, "2.00", WEEK)))
    assert got["week_start"].tolist() == [WEEK - dt.timedelta(weeks=1), WEEK]
    assert got["prev_week_amount"].tolist() == [None, Decimal("1.50")]
    assert got["change_vs_prev_week"].tolist() == [None, Decimal("0.50")]


def test_weeks_start_on_mondays_and_name_their_files() -> None:
    assert monday_of(dt.date(2024, 1, 21)) == WEEK == monday_of(WEEK)
    assert week_prefix(WEEK) == "sales_2024_w03_"
    assert week_prefix(dt.date(2024, 12, 30)) == "sales_2025_w01_"  # the ISO year


def test_a_recomputation_says_what_changed_per_region() -> None:
    before = {"this week": {}, "previous week": {}, "files": ["a"]}
    after = {"this week": {"East": {"files": 1, "rows": 2950}}, "previous week": {}, "files": ["b"]}
    assert describe_changes(before, after) == ["East, this week: rows 0 -> 2,950 (files 0 -> 1)"]
    assert describe_changes({**before, "files": ["c"]}, before) == [
        "files replaced by a re-delivery (same counts)"
    ]
    assert describe_changes(None, after) == []
