-- Tests start from empty copies of the logical databases (prefixed t_); never the demo's.
-- check: {"database": "dialect_check_db"}
DROP DATABASE IF EXISTS {database}
