-- A series' state after a slot was decided.
-- check: {"metric": "views", "slice": "all", "since": null, "last_alert": null, "checked": "2024-04-08T14:00:00"}
-- after: alerts/create_alert_state
INSERT INTO ops.alert_state (metric, slice, since, last_alert, checked)
VALUES (%(metric)s, %(slice)s, %(since)s, %(last_alert)s, %(checked)s)
ON CONFLICT (metric, slice) DO UPDATE
SET since = EXCLUDED.since, last_alert = EXCLUDED.last_alert, checked = EXCLUDED.checked,
    updated_at = now()
