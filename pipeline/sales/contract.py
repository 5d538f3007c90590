"""What the weekly sales flow reads and writes, declared once.

Reads PostgreSQL ``sales.sales``: one row per order, loaded by the inbox flow from the weekly
region files (their contract, ``SALES``, is the inbox's: ``pipeline/inbox/contract.py``).
Writes PostgreSQL ``sales.sales_agg`` (``sql/postgres/create_sales_agg.sql``) and ClickHouse
``sales.sales_agg`` with the import date (``sql/clickhouse/create_sales_agg.sql``): one row per
week x region x product.
"""

from __future__ import annotations

from pipeline.inbox.contract import SALES

# The regions a week's files come from, in the order reports list them.
REGIONS: tuple[str, ...] = ("North", "South", "East", "West")
assert set(REGIONS) == set(SALES.column("region").allowed or ()), "regions drifted from SALES"

# The aggregate's columns, in table order (PostgreSQL; ClickHouse adds import_date, imported_at).
AGG_COLUMNS = (
    "week_start",
    "region",
    "product_id",
    "sales_count",
    "total_amount",
    "avg_sale_amount",
    "rank_in_region",
    "share_of_region",
    "prev_week_amount",
    "change_vs_prev_week",
)
