-- Benchmark reset only (benchmarks/loads.py): flows replace a week by stage and swap.
-- check: {"partition": 20240115}
-- after: sales/create_sales_agg
ALTER TABLE {sales}.sales_agg DROP PARTITION %(partition)s
