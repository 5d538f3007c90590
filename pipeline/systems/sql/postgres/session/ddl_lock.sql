-- A transaction-scoped advisory lock: concurrent CREATE ... IF NOT EXISTS of the same object race
-- in PostgreSQL (a unique violation on pg_type) unless serialized.
-- check: {"key": "ddl:sql_check"}
SELECT pg_advisory_xact_lock(hashtext(%(key)s))
