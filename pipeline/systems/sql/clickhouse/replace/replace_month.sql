-- Swap the rebuilt month into the table in one step: readers see the old month or the new one.
-- check: {"database": "dialect_bionicpro_reports", "table": "reports_data_mart", "stage": "reports_data_mart_stage_20240115", "month": 202401}
-- after: replace/insert_stage
ALTER TABLE {database}.{table} REPLACE PARTITION %(month)s FROM {database}.{stage}
