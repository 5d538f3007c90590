-- The floor's aggregate: de-duplicated orders, per week x region x product, ranked in the region.
-- check: {}
-- after: benchmarks/create_floor
CREATE TABLE sales.floor_agg AS
WITH s AS (
    SELECT DISTINCT ON (sale_id) date_trunc('week', sale_date)::date AS week_start, region,
           product_id, sale_amount
    FROM sales.floor ORDER BY sale_id
), g AS (
    SELECT week_start, region, product_id, count(*) AS sales_count,
           sum(sale_amount) AS total_amount, round(avg(sale_amount), 2) AS avg_sale_amount
    FROM s GROUP BY 1, 2, 3
)
SELECT *, rank() OVER (PARTITION BY week_start, region
                       ORDER BY total_amount DESC, product_id) AS rank_in_region
FROM g
