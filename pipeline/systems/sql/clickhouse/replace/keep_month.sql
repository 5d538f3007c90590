-- The month's other days, as they are now, into the stage.
-- check: {"database": "dialect_bionicpro_reports", "table": "reports_data_mart", "stage": "reports_data_mart_stage_20240115", "date_column": "report_date", "month": 202401, "day": "2024-01-15"}
-- after: replace/create_stage
INSERT INTO {database}.{stage}
SELECT * FROM {database}.{table}
WHERE toYYYYMM({date_column}) = %(month)s AND {date_column} != toDate(%(day)s)
