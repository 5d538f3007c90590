-- The mart's example query 3: the ten most efficient users of the last 7 days (of %(today)s).
-- check: {"today": "2024-01-20"}
-- after: replace/replace_partition
SELECT
    user_id,
    email,
    avg(efficiency_score) AS efficiency,
    sum(total_actions) AS actions,
    sum(usage_hours) AS hours
FROM {bionicpro_reports}.reports_data_mart
WHERE report_date >= toDate(%(today)s) - 7
GROUP BY user_id, email
ORDER BY efficiency DESC, user_id
LIMIT 10
