-- For Redash / Grafana: messages sent per user that sent any, by gender, per day.
-- check: {"today": "2024-01-16"}
-- after: activity/insert_sample
SELECT event_date, dimension_value AS gender, messages_sent, users_sent,
       round(messages_sent / users_sent, 2) AS messages_per_recipient
FROM {test}.activity_daily
WHERE dimension = 'gender' AND event_date >= toDate(%(today)s) - 7
ORDER BY event_date, gender
