-- The orders the week's aggregate counts (checked against the week's rows it was computed from).
-- check: {"week": "2024-01-15"}
-- after: sales/create_sales_agg
SELECT coalesce(sum(sales_count), 0)::bigint
FROM sales.sales_agg
WHERE week_start = %(week)s
