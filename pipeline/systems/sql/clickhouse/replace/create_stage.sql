-- A scratch copy of the table's structure, where the day's month partition is rebuilt.
-- check: {"database": "dialect_bionicpro_reports", "table": "reports_data_mart", "stage": "reports_data_mart_stage_20240115"}
-- after: telemetry/create_mart, replace/drop_stage
CREATE TABLE {database}.{stage} AS {database}.{table}
