-- The day's telemetry per user x prosthesis (ExtractTelemetry): the device events' counts,
-- response times and battery levels, and the seconds of the usage sessions that overlap the day
-- (clipped to it). %(lo)s and %(hi)s are the day's bounds in UTC.
-- check: {"lo": "2024-01-15T00:00:00+00:00", "hi": "2024-01-16T00:00:00+00:00"}
-- after: telemetry/create_sources
WITH events AS (
    SELECT user_id, prosthesis_id,
           count(*) AS total_actions,
           round(avg(response_time_ms)::numeric, 3)::float8 AS avg_response_time,
           max(response_time_ms) AS max_response_time,
           min(response_time_ms) AS min_response_time,
           count(*) FILTER (WHERE action_type = 'grasp') AS grasp_count,
           count(*) FILTER (WHERE action_type = 'release') AS release_count,
           count(*) FILTER (WHERE action_type = 'flex') AS flex_count,
           round(avg(battery_level), 3)::float8 AS avg_battery_level,
           min(battery_level)::float8 AS min_battery_level
    FROM telemetry.device_events
    WHERE event_time >= %(lo)s AND event_time < %(hi)s
    GROUP BY user_id, prosthesis_id
), usage AS (
    SELECT user_id, prosthesis_id,
           sum(extract(epoch FROM least(ended_at, %(hi)s) - greatest(started_at, %(lo)s)))::bigint
               AS total_usage_seconds
    FROM telemetry.usage_sessions
    WHERE started_at < %(hi)s AND ended_at > %(lo)s
    GROUP BY user_id, prosthesis_id
)
SELECT e.*, coalesce(u.total_usage_seconds, 0) AS total_usage_seconds
FROM events e LEFT JOIN usage u USING (user_id, prosthesis_id)
ORDER BY user_id, prosthesis_id
