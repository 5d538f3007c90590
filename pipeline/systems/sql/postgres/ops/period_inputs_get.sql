-- An output's record: the inputs it was computed from (no row: never computed).
-- check: {"flow": "sales", "output": "postgres sales.sales_agg", "period": "2024-01-15"}
-- after: ops/create_period_inputs
SELECT inputs, digest, previous, force_token, rows_out, computed_at
FROM ops.period_inputs
WHERE flow = %(flow)s AND output = %(output)s AND period = %(period)s
