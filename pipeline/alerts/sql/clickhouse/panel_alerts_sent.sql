-- Grafana, Business metrics: every alert, repeat and recovery in the time range, newest first.
-- check: {}
-- after: ops/insert_alert
SELECT slot AS time, metric, slice, kind, round(change * 100, 1) AS change_pct
FROM {ops}.alerts
WHERE $__timeFilter(time)
ORDER BY time DESC
LIMIT 200
