-- Per user for a day: views and likes, and the user's attributes (aggregated here, not in pandas).
-- check: {"day": "2024-01-15"}
-- after: demo/insert_feed
SELECT
    user_id,
    toUInt64(countIf(action = 'view')) AS views,
    toUInt64(countIf(action = 'like')) AS likes,
    any(gender) AS gender,
    toUInt64(any(age)) AS age,
    any(os) AS os
FROM {simulator}.feed_actions
WHERE toDate(time) = toDate(%(day)s)
GROUP BY user_id
ORDER BY user_id
