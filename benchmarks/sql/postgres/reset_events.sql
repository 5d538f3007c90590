-- An empty event table for the load benchmark (benchmarks.loads).
-- check: {"table": "ops.bench_events"}
DROP TABLE IF EXISTS {table};
CREATE TABLE {table} (event_id bigint, event_date date, category text, amount numeric(12, 2))
