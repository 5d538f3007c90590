-- What a day of the activity table is computed from: per source table, the day's rows and its
-- latest event (Unix seconds, 0 for none). Late events change them, and the day is recomputed
-- (pipeline.core.periods).
-- check: {"day": "2024-01-15"}
-- after: activity/create_feed_actions, activity/create_message_actions
SELECT 'feed_actions' AS source, toUInt64(count()) AS rows,
       toUInt64(toUInt32(max(time))) AS max_time
FROM {simulator}.feed_actions
WHERE toDate(time) = toDate(%(day)s)
UNION ALL
SELECT 'message_actions' AS source, toUInt64(count()) AS rows,
       toUInt64(toUInt32(max(time))) AS max_time
FROM {simulator}.message_actions
WHERE toDate(time) = toDate(%(day)s)
