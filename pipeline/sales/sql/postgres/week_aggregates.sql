-- The week's aggregate rows for ClickHouse, in the column order of its sales_agg.
-- check: {"week": "2024-01-15"}
-- after: sales/create_sales_agg
SELECT week_start, region, product_id, sales_count, total_amount, avg_sale_amount,
       rank_in_region, share_of_region, prev_week_amount, change_vs_prev_week
FROM sales.sales_agg
WHERE week_start = %(week)s
ORDER BY region, product_id
