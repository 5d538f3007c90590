-- A session advisory lock (pipeline.systems.postgres.advisory_lock): waits for another holder up
-- to the session's lock_timeout; released when the session ends (a killed holder included).
-- check: {"key": 4242}
SELECT pg_advisory_lock(%(key)s)
