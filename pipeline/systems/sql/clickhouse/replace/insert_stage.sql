-- The day's new rows (CSV, in the table's column order) into the stage.
-- check: {"database": "dialect_bionicpro_reports", "table": "reports_data_mart", "stage": "reports_data_mart_stage_20240115"}
-- after: replace/create_stage
-- data: 2024-01-15,1,BP-000001,anna.smith.1@example.org,Anna,Smith,2023-04-02,active,1,120,180.5,400.2,90.1,50,48,22,71.2,55,5400,1.5,80,71.34,2024-01-16 02:00:00
-- data: 2024-01-15,299,BP-000299,,,,\N,,0,10,200,250,150,4,4,2,90,88,600,0.1667,60,66.11,2024-01-16 02:00:00
INSERT INTO {database}.{stage} FORMAT CSV
