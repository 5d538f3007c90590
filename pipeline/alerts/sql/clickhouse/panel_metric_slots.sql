-- Grafana, Business metrics, panel "Metric by 15-minute slot" (id 10): one metric of the anomaly
-- checks for one slice, per 15-minute slot, as the checks compute it (pipeline/alerts/tasks.py):
-- feed_users, views, likes, ctr (likes / views) from the feed, messenger_users and messages from
-- the messenger; slice 'all' or column=value (os=Android, gender=female, ...). The dashboard's
-- variables fill metric and slice, so an alert's chart link opens the series it is about.
-- check: {"metric": "ctr", "slice": "os=iOS"}
-- after: demo/insert_feed, demo/insert_messages
SELECT slot AS time, value
FROM
(
    SELECT toStartOfFifteenMinutes(time) AS slot,
        multiIf(
            %(metric)s = 'feed_users', toFloat64(uniqExact(user_id)),
            %(metric)s = 'views', toFloat64(countIf(action = 'view')),
            %(metric)s = 'likes', toFloat64(countIf(action = 'like')),
            countIf(action = 'view') > 0, countIf(action = 'like') / countIf(action = 'view'),
            nan) AS value
    FROM {simulator}.feed_actions
    WHERE $__timeFilter(time)
        AND %(metric)s IN ('feed_users', 'views', 'likes', 'ctr')
        AND has(['all', concat('os=', os), concat('gender=', gender), concat('age=', toString(age)),
            concat('country=', country), concat('city=', city), concat('source=', source),
            concat('exp_group=', toString(exp_group))], %(slice)s)
    GROUP BY slot
    UNION ALL
    SELECT toStartOfFifteenMinutes(time) AS slot,
        if(%(metric)s = 'messenger_users', toFloat64(uniqExact(user_id)), toFloat64(count()))
            AS value
    FROM {simulator}.message_actions
    WHERE $__timeFilter(time)
        AND %(metric)s IN ('messenger_users', 'messages')
        AND has(['all', concat('os=', os), concat('gender=', gender), concat('age=', toString(age)),
            concat('country=', country), concat('city=', city), concat('source=', source),
            concat('exp_group=', toString(exp_group))], %(slice)s)
    GROUP BY slot
)
ORDER BY time
