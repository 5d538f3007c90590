-- The notification ledger (pipeline.core.notifications): one row per message people get, by its
-- key (kind, flow, period, metric, slice). Recorded 'pending' before it is sent, marked 'sent'
-- after; 'failed' when the channel refused it; 'unknown' when a run died between the two and the
-- kind's policy is at-most-once. A resend (--resend) claims the row again with a new token.
-- check: {}
CREATE SCHEMA IF NOT EXISTS ops;

CREATE TABLE IF NOT EXISTS ops.notifications (
    kind         text NOT NULL,
    flow         text NOT NULL,
    period       text NOT NULL,
    metric       text NOT NULL DEFAULT '',
    slice        text NOT NULL DEFAULT '',
    status       text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'unknown')),
    policy       text NOT NULL,
    label        text NOT NULL DEFAULT '',
    body         text NOT NULL,
    photo        bytea,
    details      jsonb NOT NULL DEFAULT jsonb_build_object(),
    attempts     integer NOT NULL DEFAULT 0,
    resend_token text NOT NULL DEFAULT '',
    delivered_to text NOT NULL DEFAULT '',
    error        text NOT NULL DEFAULT '',
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    PRIMARY KEY (kind, flow, period, metric, slice)
)
