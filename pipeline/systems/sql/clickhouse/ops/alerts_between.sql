-- The alerts of a time range (tests, the demo).
-- check: {"start": "2024-01-17 00:00:00", "end": "2024-01-18 00:00:00"}
-- after: ops/insert_alert
SELECT slot, metric, slice, kind, value, baseline, change, since
FROM {ops}.alerts
WHERE slot >= toDateTime(%(start)s) AND slot < toDateTime(%(end)s)
ORDER BY slot, metric, slice, kind
