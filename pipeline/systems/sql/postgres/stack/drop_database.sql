-- Drop a database even with sessions still open (the benchmarks start from an empty one).
-- Outside a transaction: run it in autocommit.
-- check: {"database": "sql_check_db"}
DROP DATABASE IF EXISTS {database} WITH (FORCE)
