-- A week is ~2% of a year: read it through the BRIN index on sale_date. Right after a load the
-- planner's statistics are stale and it picks a full scan (4x slower here). For the transaction.
-- check: {}
SET LOCAL enable_seqscan = off
