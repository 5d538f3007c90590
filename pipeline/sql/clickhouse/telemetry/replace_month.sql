-- Swap the rebuilt month into the mart in one step: readers see the old month or the new one.
-- check: {"stage": "reports_data_mart_stage_20240115", "month": 202401}
-- after: telemetry/insert_stage
ALTER TABLE {bionicpro_reports}.reports_data_mart REPLACE PARTITION %(month)s FROM {bionicpro_reports}.{stage}
