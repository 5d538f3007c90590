-- The month's other days, as they are now, into the stage.
-- check: {"stage": "reports_data_mart_stage_20240115", "month": 202401, "day": "2024-01-15"}
-- after: telemetry/create_stage
INSERT INTO {bionicpro_reports}.{stage}
SELECT * FROM {bionicpro_reports}.reports_data_mart
WHERE toYYYYMM(report_date) = %(month)s AND report_date != toDate(%(day)s)
