-- The feed report's metrics per day: DAU, views, likes (CTR = likes / views, computed by the caller).
-- check: {"start": "2024-01-09", "end": "2024-01-15"}
-- after: demo/insert_feed
SELECT toDate(time) AS day, toUInt64(uniqExact(user_id)) AS dau,
       toUInt64(countIf(action = 'view')) AS views, toUInt64(countIf(action = 'like')) AS likes
FROM {simulator}.feed_actions
WHERE toDate(time) BETWEEN toDate(%(start)s) AND toDate(%(end)s)
GROUP BY day
ORDER BY day
