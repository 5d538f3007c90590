-- The rows the stage holds for the new period (checked against the rows sent, before the swap).
-- check: {"database": "dialect_bionicpro_reports", "table": "reports_data_mart", "stage": "reports_data_mart_stage_20240115"}
-- after: replace/insert_stage
SELECT toUInt64(count()) AS rows
FROM {database}.{stage}
