-- Grafana, Business metrics: the weekly sales amount and count per region.
-- check: {}
-- after: sales/insert_sales_agg
SELECT toDateTime(week_start) AS time, region, sum(total_amount) AS amount,
    sum(sales_count) AS sales
FROM {sales}.sales_agg
GROUP BY time, region
ORDER BY time, region
