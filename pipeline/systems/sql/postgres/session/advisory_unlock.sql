-- Release a session advisory lock this session holds (pipeline.systems.postgres.advisory_lock
-- keeps the session open for the next lock); false if it did not hold it.
-- check: {"key": 4242}
SELECT pg_advisory_unlock(%(key)s)
