-- The app report's audience per day: users of the feed only, the messenger only, both; messages
-- and the users who sent them.
-- check: {"start": "2024-01-09", "end": "2024-01-15"}
-- after: demo/insert_feed, demo/insert_messages
SELECT day,
       toUInt64(countIf(feed = 1 AND messenger = 0)) AS feed_only,
       toUInt64(countIf(feed = 0 AND messenger = 1)) AS messenger_only,
       toUInt64(countIf(feed = 1 AND messenger = 1)) AS both,
       toUInt64(sum(sent)) AS messages,
       toUInt64(countIf(sent > 0)) AS senders
FROM
(
    SELECT day, user_id, max(is_feed) AS feed, max(is_messenger) AS messenger, sum(msgs) AS sent
    FROM
    (
        SELECT toDate(time) AS day, user_id, toUInt8(1) AS is_feed, toUInt8(0) AS is_messenger,
               toUInt64(0) AS msgs
        FROM {simulator}.feed_actions
        WHERE toDate(time) BETWEEN toDate(%(start)s) AND toDate(%(end)s)
        UNION ALL
        SELECT toDate(time) AS day, user_id, toUInt8(0) AS is_feed, toUInt8(1) AS is_messenger,
               toUInt64(1) AS msgs
        FROM {simulator}.message_actions
        WHERE toDate(time) BETWEEN toDate(%(start)s) AND toDate(%(end)s)
    )
    GROUP BY day, user_id
)
GROUP BY day
ORDER BY day
