-- Swap the rebuilt partition into the table in one step: readers see the old period or the new
-- one, never an empty one (pipeline.systems.clickhouse.replace_partition).
-- check: {"database": "dialect_bionicpro_reports", "table": "reports_data_mart", "stage": "reports_data_mart_stage_20240115", "partition": 202401}
-- after: replace/insert_stage
ALTER TABLE {database}.{table} REPLACE PARTITION %(partition)s FROM {database}.{stage}
