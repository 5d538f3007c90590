-- The week's aggregate rows, before they are computed again in the same transaction.
-- check: {"week": "2024-01-15"}
-- after: sales/create_sales_agg
DELETE FROM sales.sales_agg WHERE week_start = %(week)s
