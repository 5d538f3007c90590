-- Does the table exist? (to_regclass: NULL for a missing table, never an error.)
-- check: {"table": "ops.load_markers"}
SELECT to_regclass(%(table)s) IS NOT NULL
