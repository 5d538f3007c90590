-- Is a kept connection still alive? (A server restarted since: find out now, not mid-load.)
-- check: {}
SELECT 1
