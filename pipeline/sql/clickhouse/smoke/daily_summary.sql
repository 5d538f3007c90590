-- check: {"day": "2024-01-01"}
-- after: smoke/create_daily, smoke/insert_daily
SELECT category, sum(events) AS events, round(sum(amount), 2) AS amount
FROM {ops}.smoke_daily
WHERE event_date = toDate(%(day)s)
GROUP BY category
ORDER BY category
