-- The raw rows the Spark engine aggregates: every sale from %(start)s to before %(end)s (the week
-- and the one before it). Spark reads it through JDBC in parallel slices of sale_date
-- (pipeline.systems.spark.read_postgres), each a range the BRIN index on sale_date serves.
-- check: {"start": "2024-01-08", "end": "2024-01-22"}
SELECT region, product_id, sale_date, sale_amount
FROM sales.sales
WHERE sale_date >= %(start)s AND sale_date < %(end)s
