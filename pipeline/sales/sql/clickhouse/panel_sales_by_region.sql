-- Grafana, Business metrics: the weekly sales amount and count per region over the panel's
-- time range.
-- Checked on the empty table: the amounts are Decimal, which 18.16 prints as 120.50 and 26 as
-- 120.5 (the same number to Grafana).
-- check: {}
-- after: sales/create_sales_agg
SELECT toDateTime(week_start) AS time, region, sum(total_amount) AS amount,
    sum(sales_count) AS sales
FROM {sales}.sales_agg
WHERE $__timeFilter(time)
GROUP BY time, region
ORDER BY time, region
