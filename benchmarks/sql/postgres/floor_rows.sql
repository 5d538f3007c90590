-- The floor's aggregate in the column order of ClickHouse's sales.sales_agg.
-- check: {}
-- after: benchmarks/floor_aggregate
SELECT week_start, region, product_id, sales_count, total_amount, avg_sale_amount,
       rank_in_region, 0.0, NULL, NULL, current_date, now()::timestamp(0)
FROM sales.floor_agg
