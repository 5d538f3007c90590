-- check: {"target_table": "smoke_daily", "update_id": "2024-01-01", "rows_loaded": 3}
-- after: ops/create_load_markers
INSERT INTO {ops}.load_markers (target_table, update_id, rows_loaded, loaded_at)
VALUES (%(target_table)s, %(update_id)s, %(rows_loaded)s, now())
