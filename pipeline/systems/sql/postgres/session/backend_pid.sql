-- The backend serving this session (pg_locks and pg_stat_activity name sessions by it).
-- check: {}
SELECT pg_backend_pid()
