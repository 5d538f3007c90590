-- A flow's messages recorded but not known to be sent (a run died, or the channel refused them):
-- what the flow's next run delivers first, per the kinds' policies.
-- check: {"flow": "alerts"}
-- after: ops/create_notifications
SELECT kind, flow, period, metric, slice
FROM ops.notifications
WHERE flow = %(flow)s AND status IN ('pending', 'failed')
ORDER BY recorded_at, period, kind, metric, slice
