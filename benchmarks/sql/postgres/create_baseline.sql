-- The seed-style baseline's table: the floor's columns, rows inserted one by one.
-- check: {}
-- after: benchmarks/create_floor
CREATE TABLE sales.baseline (LIKE sales.floor)
