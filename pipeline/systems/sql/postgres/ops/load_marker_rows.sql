-- The rows a committed load recorded (no row: that load never committed).
-- check: {"table": "sales.sales", "update_id": "f-0001"}
-- after: ops/create_load_markers
SELECT rows_loaded FROM ops.load_markers WHERE target_table = %(table)s AND update_id = %(update_id)s
