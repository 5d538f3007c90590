-- The mart's example query 2: usage per user over the last 30 days (of %(today)s: its today()).
-- check: {"today": "2024-01-20"}
-- after: replace/replace_partition
SELECT
    user_id,
    email,
    sum(total_actions) AS total_actions,
    avg(avg_response_time) AS avg_response_time,
    sum(usage_hours) AS total_hours,
    avg(efficiency_score) AS avg_efficiency
FROM {bionicpro_reports}.reports_data_mart
WHERE report_date >= toDate(%(today)s) - 30
GROUP BY user_id, email
ORDER BY total_actions DESC, user_id
