-- The requirement's aggregate of one week in PostgreSQL: per region and product the number of
-- sales, their sum and the average check, ranked in the region by a window function, saved in
-- the aggregate table.
-- check: {"week": "2024-01-01"}
-- after: benchmarks/create_baseline
INSERT INTO sales.baseline_agg
SELECT %(week)s::date, region, product_id, count(*), sum(sale_amount), round(avg(sale_amount), 2),
       rank() OVER (PARTITION BY region ORDER BY sum(sale_amount) DESC, product_id)
FROM sales.baseline
WHERE sale_date >= %(week)s::date AND sale_date < %(week)s::date + 7
GROUP BY region, product_id
