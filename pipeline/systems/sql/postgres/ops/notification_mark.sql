-- After the send: 'sent' (where it went), 'failed' (the channel's error, no personal data), or
-- 'unknown' (an at-most-once message whose run died between recording and marking it). The
-- picture is only kept while the message may still have to be sent.
-- check: {"kind": "report", "flow": "reports", "period": "2024-01-15", "metric": "feed", "slice": "", "status": "sent", "delivered_to": "telegram", "error": ""}
-- after: ops/create_notifications
UPDATE ops.notifications
SET status = %(status)s, delivered_to = %(delivered_to)s, error = %(error)s,
    sent_at = CASE WHEN %(status)s = 'sent' THEN now() ELSE sent_at END,
    photo = CASE WHEN %(status)s = 'failed' THEN photo END
WHERE kind = %(kind)s AND flow = %(flow)s AND period = %(period)s AND metric = %(metric)s
  AND slice = %(slice)s
