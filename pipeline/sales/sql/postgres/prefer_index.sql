-- A week is ~2% of a year: read it through the BRIN index on sale_date, and join the week's
-- groups by hash or merge. Right after a load the planner's statistics are stale (it believes
-- the table is nearly empty): it picks a full scan (4x slower here) and a nested loop that
-- recomputes the previous week once per group (290-550 ms a week instead of 11). For the
-- transaction.
-- check: {}
SET LOCAL enable_seqscan = off;
SET LOCAL enable_nestloop = off
