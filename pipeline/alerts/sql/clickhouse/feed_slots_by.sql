-- The feed's metrics per 15-minute slot and value of a column (a slice such as os).
-- check: {"start": "2024-01-15 00:00:00", "end": "2024-01-16 00:00:00", "dimension": "os"}
-- after: demo/insert_feed
SELECT toStartOfFifteenMinutes(time) AS slot, toString({dimension}) AS slice,
       toUInt64(uniqExact(user_id)) AS feed_users,
       toUInt64(countIf(action = 'view')) AS views,
       toUInt64(countIf(action = 'like')) AS likes
FROM {simulator}.feed_actions
WHERE time >= toDateTime(%(start)s) AND time < toDateTime(%(end)s)
GROUP BY slot, slice
ORDER BY slot, slice
