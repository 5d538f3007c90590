-- The mart's rows of one day (tests, the demo).
-- check: {"day": "2024-01-15"}
-- after: replace/replace_partition
SELECT report_date, user_id, prosthesis_id, crm_matched, total_actions, avg_response_time,
       max_response_time, min_response_time, grasp_count, release_count, flex_count,
       avg_battery_level, min_battery_level, total_usage_seconds, usage_hours, actions_per_hour,
       efficiency_score, status, order_date
FROM {bionicpro_reports}.reports_data_mart
WHERE report_date = toDate(%(day)s)
ORDER BY user_id, prosthesis_id
