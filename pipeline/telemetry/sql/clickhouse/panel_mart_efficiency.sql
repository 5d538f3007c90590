-- Grafana, Business metrics: the mart's daily efficiency, usage hours and users, last 30 days.
-- check: {}
-- after: telemetry/create_mart
SELECT toDateTime(report_date) AS time, avg(efficiency_score) AS efficiency,
    sum(usage_hours) AS hours, uniqExact(user_id) AS users
FROM {bionicpro_reports}.reports_data_mart
WHERE report_date >= today() - 30
GROUP BY time
ORDER BY time
