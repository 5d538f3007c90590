-- Every series' state (a few hundred rows at most: metrics x slice values).
-- check: {}
-- after: alerts/create_alert_state
SELECT metric, slice, since, last_alert, checked
FROM ops.alert_state
