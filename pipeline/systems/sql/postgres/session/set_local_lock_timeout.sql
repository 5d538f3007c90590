-- lock_timeout in milliseconds for the current transaction only (an advisory lock taken on a
-- session that goes on with other work afterwards keeps its own lock_timeout).
-- check: {"ms": "1000"}
SELECT set_config('lock_timeout', %(ms)s, true)
