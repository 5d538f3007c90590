-- Replacing one partition of a table (pipeline.systems.clickhouse.replace_partition): the stage.
-- check: {"database": "dialect_bionicpro_reports", "stage": "reports_data_mart_stage_20240115"}
DROP TABLE IF EXISTS {database}.{stage}
