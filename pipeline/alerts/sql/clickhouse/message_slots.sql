-- The messenger's metrics per 15-minute slot, overall.
-- check: {"start": "2024-01-15 00:00:00", "end": "2024-01-16 00:00:00"}
-- after: demo/insert_messages
SELECT toStartOfFifteenMinutes(time) AS slot, 'all' AS slice,
       toUInt64(uniqExact(user_id)) AS messenger_users,
       toUInt64(count()) AS messages
FROM {simulator}.message_actions
WHERE time >= toDateTime(%(start)s) AND time < toDateTime(%(end)s)
GROUP BY slot
ORDER BY slot
