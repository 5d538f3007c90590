-- Grafana, Business metrics: messages sent and their senders per day and gender, over the
-- panel's time range (Grafana's $__timeFilter).
-- check: {}
-- after: activity/insert_sample
SELECT toDateTime(event_date) AS time, dimension_value AS gender, messages_sent,
    users_sent
FROM {test}.activity_daily
WHERE dimension = 'gender' AND $__timeFilter(time)
ORDER BY time, gender
