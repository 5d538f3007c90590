-- The mart's example query 1: a user's report over a period.
-- check: {"user_id": 1, "start": "2024-01-01", "end": "2024-01-31"}
-- after: replace/replace_partition
SELECT *
FROM {bionicpro_reports}.reports_data_mart
WHERE user_id = %(user_id)s
  AND report_date BETWEEN toDate(%(start)s) AND toDate(%(end)s)
ORDER BY report_date DESC
