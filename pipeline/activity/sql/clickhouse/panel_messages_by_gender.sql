-- Grafana, Business metrics: messages sent and their senders per day and gender, last 30 days.
-- check: {}
-- after: activity/insert_sample
SELECT toDateTime(event_date) AS time, dimension_value AS gender, messages_sent,
    users_sent
FROM {test}.activity_daily
WHERE dimension = 'gender' AND event_date >= today() - 30
ORDER BY time, gender
