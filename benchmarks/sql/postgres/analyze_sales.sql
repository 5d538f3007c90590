-- Fresh planner statistics after the benchmark's bulk load of the year (benchmarks.spark_bench).
-- check: {}
ANALYZE sales.sales
