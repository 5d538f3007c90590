-- Replacing one day of a monthly-partitioned table (pipeline.systems.clickhouse.replace_day): the stage.
-- check: {"database": "dialect_bionicpro_reports", "stage": "reports_data_mart_stage_20240115"}
DROP TABLE IF EXISTS {database}.{stage}
