-- The sales flow's tables dropped before each measured run (benchmarks.sales_bench), with the
-- records of what was computed and sent: every run does the same work.
-- check: {}
DROP TABLE IF EXISTS sales.sales;
DROP TABLE IF EXISTS sales.sales_agg;
DROP TABLE IF EXISTS ops.load_markers;
DROP TABLE IF EXISTS ops.period_inputs;
DROP TABLE IF EXISTS ops.notifications;
DROP TABLE IF EXISTS sales.baseline;
DROP TABLE IF EXISTS sales.baseline_agg
