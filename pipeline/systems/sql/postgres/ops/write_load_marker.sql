-- A load's marker, in the load's own transaction; a rerun of the same load updates it.
-- check: {"table": "sales.sales", "update_id": "f-0001", "rows": 42}
-- after: ops/create_load_markers
INSERT INTO ops.load_markers (target_table, update_id, rows_loaded)
VALUES (%(table)s, %(update_id)s, %(rows)s)
ON CONFLICT (target_table, update_id)
DO UPDATE SET rows_loaded = EXCLUDED.rows_loaded, loaded_at = now()
