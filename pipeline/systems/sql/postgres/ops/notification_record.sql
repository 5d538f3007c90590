-- A message recorded before it is sent (or claimed again to be sent: a resend, a failed send,
-- an at-least-once message whose run died before it was marked).
-- check: {"kind": "report", "flow": "reports", "period": "2024-01-15", "metric": "feed", "slice": "", "policy": "at-least-once", "label": "report-feed", "body": "Feed report", "photo": null, "details": "{}", "resend_token": ""}
-- after: ops/create_notifications
INSERT INTO ops.notifications (kind, flow, period, metric, slice, status, policy, label, body,
                               photo, details, attempts, resend_token)
VALUES (%(kind)s, %(flow)s, %(period)s, %(metric)s, %(slice)s, 'pending', %(policy)s, %(label)s,
        %(body)s, %(photo)s, %(details)s::jsonb, 1, %(resend_token)s)
ON CONFLICT (kind, flow, period, metric, slice) DO UPDATE
SET status = 'pending', policy = EXCLUDED.policy, label = EXCLUDED.label, body = EXCLUDED.body,
    photo = EXCLUDED.photo, details = EXCLUDED.details,
    attempts = ops.notifications.attempts + 1, resend_token = EXCLUDED.resend_token,
    error = '', recorded_at = now()
