-- The stage's rows of the replaced day (its month's other days were copied in as they are).
-- check: {"database": "dialect_bionicpro_reports", "table": "reports_data_mart", "stage": "reports_data_mart_stage_20240115", "date_column": "report_date", "day": "2024-01-15"}
-- after: replace/insert_stage
SELECT toUInt64(count()) AS rows
FROM {database}.{stage}
WHERE {date_column} = toDate(%(day)s)
