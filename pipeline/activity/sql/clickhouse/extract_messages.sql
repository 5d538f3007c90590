-- Per user for a day: messages sent and received, and how many distinct people each way; the
-- attributes come from the user's own (sent) rows, empty for a user who only received.
-- check: {"day": "2024-01-15"}
-- after: demo/insert_messages
SELECT
    uid AS user_id,
    toUInt64(sum(sent)) AS messages_sent,
    toUInt64(sum(sent_to)) AS users_sent,
    toUInt64(sum(received)) AS messages_received,
    toUInt64(sum(received_from)) AS users_received,
    anyIf(sender_gender, own = 1) AS gender,
    toUInt64(anyIf(sender_age, own = 1)) AS age,
    anyIf(sender_os, own = 1) AS os
FROM
(
    SELECT user_id AS uid, toUInt64(count()) AS sent, toUInt64(uniqExact(receiver_id)) AS sent_to,
           toUInt64(0) AS received, toUInt64(0) AS received_from, any(gender) AS sender_gender,
           any(age) AS sender_age, any(os) AS sender_os, toUInt8(1) AS own
    FROM {simulator}.message_actions
    WHERE toDate(time) = toDate(%(day)s)
    GROUP BY user_id
    UNION ALL
    SELECT receiver_id AS uid, toUInt64(0) AS sent, toUInt64(0) AS sent_to,
           toUInt64(count()) AS received, toUInt64(uniqExact(user_id)) AS received_from,
           '' AS sender_gender, toUInt8(0) AS sender_age, '' AS sender_os, toUInt8(0) AS own
    FROM {simulator}.message_actions
    WHERE toDate(time) = toDate(%(day)s)
    GROUP BY receiver_id
)
GROUP BY uid
ORDER BY user_id
