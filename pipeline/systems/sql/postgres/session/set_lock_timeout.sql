-- The session's lock_timeout in milliseconds (a lock's own wait, e.g. the period lock's).
-- check: {"ms": "1000"}
SELECT set_config('lock_timeout', %(ms)s, false)
