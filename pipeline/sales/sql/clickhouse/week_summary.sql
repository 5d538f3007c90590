-- The summary notification: per region, the week's sales and amount.
-- check: {"week": "2024-01-15"}
-- after: sales/create_sales_agg, sales/insert_sales_agg
SELECT region, toUInt64(sum(sales_count)) AS sales, toFloat64(sum(total_amount)) AS amount
FROM {sales}.sales_agg
WHERE week_start = toDate(%(week)s)
GROUP BY region
ORDER BY region
