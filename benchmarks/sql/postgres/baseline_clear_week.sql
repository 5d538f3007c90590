-- The requirement's clear_agg step: the week's aggregates deleted before they are computed again.
-- check: {"week": "2024-01-01"}
-- after: benchmarks/create_baseline
DELETE FROM sales.baseline_agg WHERE week_start = %(week)s
