-- For Redash / Grafana: views, likes and CTR per day and os over the last %(days)s days.
-- check: {"days": 30, "today": "2024-01-16"}
-- after: activity/insert_sample
SELECT event_date, dimension_value AS os, views, likes, round(likes / views, 4) AS ctr
FROM {test}.activity_daily
WHERE dimension = 'os' AND event_date >= toDate(%(today)s) - %(days)s
ORDER BY event_date, os
