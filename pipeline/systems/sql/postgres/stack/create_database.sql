-- A database of its own (the benchmarks'). Outside a transaction: run it in autocommit.
-- check: {"database": "sql_check_db"}
CREATE DATABASE {database}
