-- The table's rows of a day (tests, the demo).
-- check: {"day": "2024-01-15"}
-- after: activity/insert_sample
SELECT event_date, dimension, dimension_value, views, likes, messages_received, messages_sent,
       users_received, users_sent
FROM {test}.activity_daily
WHERE event_date = toDate(%(day)s)
ORDER BY dimension, dimension_value
