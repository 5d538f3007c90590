-- How many messages with a key's kind, flow, period and metric were recorded for a run (a failed
-- task's attempts in one run each get a message: the slice is "<run id>/<attempt>").
-- check: {"kind": "failure", "flow": "sales", "period": "week=2024-01-15", "metric": "SalesAggregates", "prefix": "abc/%"}
-- after: ops/create_notifications
SELECT count(*)
FROM ops.notifications
WHERE kind = %(kind)s AND flow = %(flow)s AND period = %(period)s AND metric = %(metric)s
  AND slice LIKE %(prefix)s
