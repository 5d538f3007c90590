-- The week's aggregates read back for ClickHouse (the requirement's copy_aggregates step).
-- check: {"week": "2024-01-01"}
-- after: benchmarks/create_baseline
SELECT week_start, region, product_id, sales_count, total_amount, avg_sale_amount, rank_in_region
FROM sales.baseline_agg WHERE week_start = %(week)s
