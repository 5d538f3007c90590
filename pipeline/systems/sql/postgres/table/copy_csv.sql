-- Rows into a table by COPY, as CSV with a header line (pipeline.systems.postgres.copy_csv).
-- check: {"table": "ops.load_markers", "columns": ["target_table", "update_id", "rows_loaded"]}
-- after: ops/create_load_markers
-- data: target_table,update_id,rows_loaded
-- data: sales.sales,f-0001,42
COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv, HEADER true)
