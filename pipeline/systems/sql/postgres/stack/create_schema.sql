-- The local stack, the compose stack and the tests create every schema with this statement
-- (pipeline.bootstrap).
-- check: {"schema": "sql_check_schema"}
CREATE SCHEMA IF NOT EXISTS {schema}
