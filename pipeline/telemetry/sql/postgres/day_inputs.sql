-- What a day of the mart is computed from: per source table, the day's rows and latest time.
-- Late uploads change them, and the day is recomputed (pipeline.core.periods). The CRM is read
-- as it is when the day runs (it keeps no history) and is not part of this.
-- check: {"lo": "2024-01-15T00:00:00+00:00", "hi": "2024-01-16T00:00:00+00:00"}
-- after: telemetry/create_sources
SELECT 'device_events' AS source, count(*) AS rows, max(event_time) AS latest
FROM telemetry.device_events
WHERE event_time >= %(lo)s AND event_time < %(hi)s
UNION ALL
SELECT 'usage_sessions' AS source, count(*) AS rows, max(ended_at) AS latest
FROM telemetry.usage_sessions
WHERE started_at < %(hi)s AND ended_at > %(lo)s
