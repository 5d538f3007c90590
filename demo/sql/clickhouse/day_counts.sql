-- The rows of a day in both tables (the demo, tests).
-- check: {"day": "2024-01-15"}
-- after: demo/insert_feed, demo/insert_messages
SELECT
    (SELECT toUInt64(count()) FROM {simulator}.feed_actions WHERE toDate(time) = toDate(%(day)s)) AS feed_actions,
    (SELECT toUInt64(count()) FROM {simulator}.message_actions WHERE toDate(time) = toDate(%(day)s)) AS message_actions
