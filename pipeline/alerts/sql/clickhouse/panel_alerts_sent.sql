-- Grafana, Business metrics: every alert, repeat and recovery of the last 7 days, newest first.
-- check: {}
-- after: ops/insert_alert
SELECT slot AS time, metric, slice, kind, round(change * 100, 1) AS change_pct
FROM {ops}.alerts
WHERE slot >= now() - 7 * 86400
ORDER BY time DESC
LIMIT 200
