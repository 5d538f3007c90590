-- The sales flow's tables dropped before each measured run (benchmarks.sales_bench).
-- check: {}
DROP TABLE IF EXISTS sales.sales;
DROP TABLE IF EXISTS sales.sales_agg;
DROP TABLE IF EXISTS ops.load_markers;
DROP TABLE IF EXISTS sales.baseline;
DROP TABLE IF EXISTS sales.baseline_agg
