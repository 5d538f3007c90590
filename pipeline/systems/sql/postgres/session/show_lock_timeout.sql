-- The session's lock_timeout now (PIPELINE_PG_LOCK_TIMEOUT_S unless a statement changed it).
-- check: {}
SHOW lock_timeout
