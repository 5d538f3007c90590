-- One row per region x product for the week. The previous week comes from the raw rows, not from
-- last week's aggregate, so weeks can be computed in any order (a backfill runs them in parallel).
-- What a row means, in pandas: pipeline/sales/transform.py (aggregate_week; the tests hold this
-- statement and the Spark engine to it).
-- check: {"week": "2024-01-15"}
-- after: sales/create_sales_agg
WITH cur AS (
    SELECT region, product_id, count(*) AS sales_count, sum(sale_amount) AS total_amount,
           avg(sale_amount) AS avg_sale_amount
    FROM sales.sales
    WHERE sale_date >= %(week)s AND sale_date < %(week)s::date + 7
    GROUP BY region, product_id
), prev AS (
    SELECT region, product_id, sum(sale_amount) AS total_amount
    FROM sales.sales
    WHERE sale_date >= %(week)s::date - 7 AND sale_date < %(week)s
    GROUP BY region, product_id
)
INSERT INTO sales.sales_agg (week_start, region, product_id, sales_count, total_amount,
                             avg_sale_amount, rank_in_region, share_of_region,
                             prev_week_amount, change_vs_prev_week)
SELECT %(week)s, c.region, c.product_id, c.sales_count, c.total_amount,
       round(c.avg_sale_amount, 2),
       rank() OVER (PARTITION BY c.region ORDER BY c.total_amount DESC, c.product_id),
       round(c.total_amount / sum(c.total_amount) OVER (PARTITION BY c.region), 6),
       p.total_amount,
       c.total_amount - p.total_amount
FROM cur c
LEFT JOIN prev p USING (region, product_id)
