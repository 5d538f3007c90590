-- The requirement's way, as its solution builds it: the orders table (the floor's columns, rows
-- inserted one by one), an index on sale_date so each week's aggregate reads only its week
-- (generous to it: without one the weekly aggregate scans the whole year), and the aggregate
-- table the week's groupings are saved in before they go to ClickHouse.
-- check: {}
-- after: benchmarks/create_floor
CREATE TABLE sales.baseline (LIKE sales.floor);
CREATE INDEX baseline_sale_date ON sales.baseline (sale_date);
CREATE TABLE sales.baseline_agg (
    week_start date, region text, product_id bigint, sales_count bigint,
    total_amount numeric(16, 2), avg_sale_amount numeric(16, 2), rank_in_region bigint
)
