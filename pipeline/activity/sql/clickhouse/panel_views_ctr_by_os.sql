-- Grafana, Business metrics: views, likes and CTR per day and os over the panel's time range
-- (monitoring/dashboards.py writes it into the dashboard with the logical database names).
-- check: {}
-- after: activity/insert_sample
SELECT toDateTime(event_date) AS time, dimension_value AS os, views, likes,
    round(likes / views, 4) AS ctr
FROM {test}.activity_daily
WHERE dimension = 'os' AND $__timeFilter(time)
ORDER BY time, os
