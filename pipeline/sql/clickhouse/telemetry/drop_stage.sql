-- check: {"stage": "reports_data_mart_stage_20240115"}
DROP TABLE IF EXISTS {bionicpro_reports}.{stage}
