-- The messenger's metrics per 15-minute slot and value of a column of the sender.
-- check: {"start": "2024-01-15 00:00:00", "end": "2024-01-16 00:00:00", "dimension": "os"}
-- after: demo/insert_messages
SELECT toStartOfFifteenMinutes(time) AS slot, toString({dimension}) AS slice,
       toUInt64(uniqExact(user_id)) AS messenger_users,
       toUInt64(count()) AS messages
FROM {simulator}.message_actions
WHERE time >= toDateTime(%(start)s) AND time < toDateTime(%(end)s)
GROUP BY slot, slice
ORDER BY slot, slice
