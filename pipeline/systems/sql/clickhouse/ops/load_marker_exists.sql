-- check: {"target_table": "smoke_daily", "update_id": "2024-01-01"}
-- after: ops/create_load_markers, ops/insert_load_marker
SELECT count() > 0 AS present
FROM {ops}.load_markers
WHERE target_table = %(target_table)s AND update_id = %(update_id)s
