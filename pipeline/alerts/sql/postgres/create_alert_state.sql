-- The alert state per metric x slice (the 15-minute check): the open anomaly (since), the last
-- alert sent (the cooldown counts from it) and the last slot decided. Written in the same
-- transaction as the record of the message it causes (ops.notifications), so losing Redis, or a
-- crash, never re-alerts inside the cooldown or forgets a recovery.
-- check: {}
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE IF NOT EXISTS ops.alert_state (
    metric     text NOT NULL,
    slice      text NOT NULL,
    since      timestamp,
    last_alert timestamp,
    checked    timestamp NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (metric, slice)
)
