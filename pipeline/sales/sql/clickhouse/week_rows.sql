-- The week's aggregate rows as stored, without the import time (tests: the engines compared).
-- Checked on the empty table: 18.16 prints a Decimal as 120.50, 26 as 120.5 (the same number in
-- the JSON the client reads).
-- check: {"week": "2024-01-15"}
-- after: sales/create_sales_agg
SELECT week_start, region, product_id, sales_count, total_amount, avg_sale_amount,
       rank_in_region, share_of_region, prev_week_amount, change_vs_prev_week
FROM {sales}.sales_agg
WHERE week_start = toDate(%(week)s)
ORDER BY region, product_id
