-- The local stack and the compose stack create every logical database with this statement.
-- check: {"database": "dialect_check_db"}
CREATE DATABASE IF NOT EXISTS {database}
