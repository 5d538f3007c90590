-- An output was (re)computed from these inputs: written in the same transaction as the output
-- where the output is in PostgreSQL, right after the swap where it is in ClickHouse. The inputs
-- before are kept when they differ (what changed); a forced run's token is kept as well.
-- check: {"flow": "sales", "output": "postgres sales.sales_agg", "period": "2024-01-15", "inputs": "{}", "digest": "44136fa355b3678a", "force_token": "", "rows_out": 0}
-- after: ops/create_period_inputs
INSERT INTO ops.period_inputs AS p (flow, output, period, inputs, digest, force_token, rows_out)
VALUES (%(flow)s, %(output)s, %(period)s, %(inputs)s::jsonb, %(digest)s, %(force_token)s,
        %(rows_out)s)
ON CONFLICT (flow, output, period) DO UPDATE
SET previous = CASE WHEN p.digest <> EXCLUDED.digest THEN p.inputs ELSE p.previous END,
    inputs = EXCLUDED.inputs, digest = EXCLUDED.digest, force_token = EXCLUDED.force_token,
    rows_out = EXCLUDED.rows_out, computed_at = now()
