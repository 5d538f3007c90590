-- A flow's sent messages of some kinds over a range of periods (ISO text: a range of it is a
-- range of time), with their details: the alerts' copy in ClickHouse is rebuilt from these.
-- check: {"flow": "alerts", "kinds": ["alert", "repeat", "recovery"], "start": "2024-04", "end": "2024-05"}
-- after: ops/create_notifications
SELECT kind, period, metric, slice, details, sent_at
FROM ops.notifications
WHERE flow = %(flow)s AND kind = ANY(%(kinds)s) AND status = 'sent'
  AND period >= %(start)s AND period < %(end)s
ORDER BY period, metric, slice, kind
