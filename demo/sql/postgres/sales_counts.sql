-- What the demo loaded into PostgreSQL: the orders, the weekly aggregate's rows and weeks.
-- check: {}
-- after: sales/create_sales_agg
SELECT (SELECT count(*) FROM sales.sales) AS sales_rows,
       count(*) AS agg_rows,
       count(DISTINCT week_start) AS agg_weeks
FROM sales.sales_agg
