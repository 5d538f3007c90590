-- A backfill's summary notification: per region, the sales and amount of the weeks from start
-- to end (Mondays, inclusive).
-- check: {"start": "2024-01-01", "end": "2024-01-15"}
-- after: sales/create_sales_agg, sales/insert_sales_agg
SELECT region, toUInt64(sum(sales_count)) AS sales, toFloat64(sum(total_amount)) AS amount
FROM {sales}.sales_agg
WHERE week_start >= toDate(%(start)s) AND week_start <= toDate(%(end)s)
GROUP BY region
ORDER BY region
