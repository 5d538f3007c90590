-- New users per day and source: users whose first action (feed or messenger) is on that day.
-- check: {"start": "2024-01-09", "end": "2024-01-15"}
-- after: demo/insert_feed, demo/insert_messages
SELECT first_day AS day, source, toUInt64(count()) AS new_users
FROM
(
    SELECT user_id, min(d) AS first_day, any(src) AS source
    FROM
    (
        SELECT user_id, toDate(time) AS d, source AS src
        FROM {simulator}.feed_actions WHERE toDate(time) <= toDate(%(end)s)
        UNION ALL
        SELECT user_id, toDate(time) AS d, source AS src
        FROM {simulator}.message_actions WHERE toDate(time) <= toDate(%(end)s)
    )
    GROUP BY user_id
)
WHERE first_day BETWEEN toDate(%(start)s) AND toDate(%(end)s)
GROUP BY day, source
ORDER BY day, source
