"""The weekly sales flow's business meaning, pure: frames in, frames out (pandas, exact ``Decimal``
money, never floats).

``aggregate_week`` is what a row of ``sales.sales_agg`` means. The flow computes it on one of two
engines, in the database (``sql/postgres/aggregate_week.sql``) or on Spark (``spark.py``); the
tests hold both engines' tables to this definition (``tests/sales/``). The other pieces are the
week arithmetic the tasks share and the words of a recomputation's summary.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.sales.contract import AGG_COLUMNS, REGIONS

if TYPE_CHECKING:
    from pipeline.core.periods import Inputs

WEEK = dt.timedelta(weeks=1)
CENT = Decimal("0.01")
MILLIONTH = Decimal("0.000001")
KEYS = ["region", "product_id"]


def monday_of(day: dt.date) -> dt.date:
    """The Monday of the week (Monday to Sunday) that ``day`` falls in."""
    return day - dt.timedelta(days=day.weekday())


def week_prefix(week: dt.date) -> str:
    """How the week's region files are named: ``sales_<ISO year>_w<ISO week>_``."""
    year, number, _ = week.isocalendar()
    return f"sales_{year}_w{number:02d}_"


def sales_of_week(rows: pd.DataFrame, week: dt.date) -> pd.DataFrame:
    """The orders (rows with a ``sale_date``) of the week starting on the Monday ``week``."""
    dates = rows["sale_date"]
    return rows[(dates >= week) & (dates < week + WEEK)]


def _half_up(value: Decimal, places: Decimal) -> Decimal:
    """``value`` rounded to ``places``, ties away from zero, as PostgreSQL's ``round(numeric)``."""
    return value.quantize(places, rounding=ROUND_HALF_UP)


def _totals(rows: pd.DataFrame) -> pd.DataFrame:
    """Per region x product: the number of orders and the sum of their amounts."""
    return (
        rows.groupby(KEYS, sort=True)
        .agg(sales_count=("sale_amount", "size"), total_amount=("sale_amount", "sum"))
        .reset_index()
    )


def aggregate_week(rows: pd.DataFrame, previous_rows: pd.DataFrame, week: dt.date) -> pd.DataFrame:
    """One row per region x product sold in the week starting on the Monday ``week``: the rows
    of ``sales.sales_agg`` (``AGG_COLUMNS``), by region and product.

    ``rows`` are the week's orders, ``previous_rows`` the week before's (``region``,
    ``product_id``, ``sale_amount`` as ``Decimal``). Per region x product: the number of orders
    and their total; the average order rounded to cents; the rank in the region by total
    (largest first, ties by product id); the share of the region's total rounded to 6 places
    (roundings half up); the previous week's total and the change against it (``None`` when the
    product sold nothing the week before)."""
    week_rows = _totals(rows)
    if week_rows.empty:
        return pd.DataFrame(columns=list(AGG_COLUMNS))
    previous = _totals(previous_rows).rename(columns={"total_amount": "prev_week_amount"})
    out = week_rows.merge(previous[[*KEYS, "prev_week_amount"]], on=KEYS, how="left")
    totals, counts = out["total_amount"], out["sales_count"]
    region_totals = out.groupby("region")["total_amount"].transform("sum")
    prev = out["prev_week_amount"].astype(object)
    prev = prev.where(prev.notna(), None)
    out["week_start"] = week
    out["avg_sale_amount"] = [_half_up(t / n, CENT) for t, n in zip(totals, counts, strict=True)]
    ranked = out.sort_values(
        ["region", "total_amount", "product_id"], ascending=[True, False, True]
    )
    out["rank_in_region"] = ranked.groupby("region").cumcount() + 1
    out["share_of_region"] = [
        _half_up(t / r, MILLIONTH) for t, r in zip(totals, region_totals, strict=True)
    ]
    out["prev_week_amount"] = prev
    out["change_vs_prev_week"] = [
        None if p is None else t - p for t, p in zip(totals, prev, strict=True)
    ]
    return out[list(AGG_COLUMNS)]


def aggregate_weeks(rows: pd.DataFrame) -> pd.DataFrame:
    """``aggregate_week`` for every week the orders in ``rows`` fall in, one after the other."""
    weeks = sorted({monday_of(day) for day in rows["sale_date"]})
    frames = [
        aggregate_week(sales_of_week(rows, week), sales_of_week(rows, week - WEEK), week)
        for week in weeks
    ]
    if not frames:
        return pd.DataFrame(columns=list(AGG_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def describe_changes(before: Inputs | None, after: Inputs) -> list[str]:
    """What a recomputation changed, per region: "East, this week: rows 0 -> 2,950 (files 0 ->
    1)"; a re-delivery with the same counts: "files replaced"."""
    if before is None:
        return []
    lines = []
    for part in ("this week", "previous week"):
        old, new = before.get(part, {}), after.get(part, {})
        for region in REGIONS:
            was, now = old.get(region, {}), new.get(region, {})
            if was != now:
                lines.append(
                    f"{region}, {part}: rows {was.get('rows', 0):,} -> {now.get('rows', 0):,}"
                    f" (files {was.get('files', 0)} -> {now.get('files', 0)})"
                )
    if not lines and before.get("files") != after.get("files"):
        lines.append("files replaced by a re-delivery (same counts)")
    return lines
