-- One message of the ledger by its key (no row: never recorded).
-- check: {"kind": "report", "flow": "reports", "period": "2024-01-15", "metric": "feed", "slice": ""}
-- after: ops/create_notifications
SELECT status, policy, label, body, photo, details, attempts, resend_token
FROM ops.notifications
WHERE kind = %(kind)s AND flow = %(flow)s AND period = %(period)s AND metric = %(metric)s
  AND slice = %(slice)s
