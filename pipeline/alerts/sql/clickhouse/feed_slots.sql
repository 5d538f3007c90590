-- The feed's metrics per 15-minute slot, overall.
-- check: {"start": "2024-01-15 00:00:00", "end": "2024-01-16 00:00:00"}
-- after: demo/insert_feed
SELECT toStartOfFifteenMinutes(time) AS slot, 'all' AS slice,
       toUInt64(uniqExact(user_id)) AS feed_users,
       toUInt64(countIf(action = 'view')) AS views,
       toUInt64(countIf(action = 'like')) AS likes
FROM {simulator}.feed_actions
WHERE time >= toDateTime(%(start)s) AND time < toDateTime(%(end)s)
GROUP BY slot
ORDER BY slot
