-- A scratch copy of the mart's structure, where one month partition is rebuilt.
-- check: {"stage": "reports_data_mart_stage_20240115"}
-- after: telemetry/create_mart, telemetry/drop_stage
CREATE TABLE {bionicpro_reports}.{stage} AS {bionicpro_reports}.reports_data_mart
