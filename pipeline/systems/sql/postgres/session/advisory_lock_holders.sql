-- The backends holding a session advisory lock (pipeline.systems.postgres.lock_key of its name):
-- what to look at when a run waits for a period lock.
-- check: {"key": 4242}
SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND granted
  AND ((classid::bigint << 32) | objid::bigint) = %(key)s
