-- The device telemetry this flow reads (filled by the prostheses' upload service; the demo's
-- generator fakes it): one row per usage session, one per device event inside a session.
CREATE SCHEMA IF NOT EXISTS telemetry;

CREATE TABLE IF NOT EXISTS telemetry.usage_sessions (
    session_id    bigint PRIMARY KEY,
    user_id       bigint NOT NULL,
    prosthesis_id text NOT NULL,
    started_at    timestamptz NOT NULL,
    ended_at      timestamptz NOT NULL,
    CHECK (ended_at >= started_at)
);

CREATE TABLE IF NOT EXISTS telemetry.device_events (
    user_id          bigint NOT NULL,
    prosthesis_id    text NOT NULL,
    event_time       timestamptz NOT NULL,
    action_type      text NOT NULL CHECK (action_type IN ('grasp', 'release', 'flex')),
    response_time_ms double precision NOT NULL CHECK (response_time_ms >= 0),
    battery_level    smallint NOT NULL CHECK (battery_level BETWEEN 0 AND 100),
    session_id       bigint NOT NULL
);

CREATE INDEX IF NOT EXISTS device_events_time ON telemetry.device_events (event_time);
CREATE INDEX IF NOT EXISTS usage_sessions_start ON telemetry.usage_sessions (started_at);
