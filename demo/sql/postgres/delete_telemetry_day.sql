-- The generated day's telemetry, before the day is written again (in the same transaction).
-- check: {"lo": "2024-01-15", "hi": "2024-01-16"}
-- after: telemetry/create_sources
DELETE FROM telemetry.device_events WHERE event_time >= %(lo)s AND event_time < %(hi)s;
DELETE FROM telemetry.usage_sessions WHERE started_at >= %(lo)s AND started_at < %(hi)s
