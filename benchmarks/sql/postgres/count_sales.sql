-- The orders the measured flow loaded.
-- check: {}
SELECT count(*) FROM sales.sales
