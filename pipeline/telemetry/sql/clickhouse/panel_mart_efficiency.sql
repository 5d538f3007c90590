-- Grafana, Business metrics: the mart's daily efficiency, usage hours and users over the
-- panel's time range.
-- check: {}
-- after: telemetry/create_mart
SELECT toDateTime(report_date) AS time, avg(efficiency_score) AS efficiency,
    sum(usage_hours) AS hours, uniqExact(user_id) AS users
FROM {bionicpro_reports}.reports_data_mart
WHERE $__timeFilter(time)
GROUP BY time
ORDER BY time
