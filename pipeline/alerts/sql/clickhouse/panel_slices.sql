-- Grafana, Business metrics: the choices of the dashboard's `slice` variable: all, then each os
-- seen in the time range (the checks' default slice column; another slice, such as
-- gender=female, can be typed or come with an alert's chart link).
-- check: {}
-- after: demo/insert_feed
SELECT slice
FROM
(
    SELECT 'all' AS slice, 0 AS ord
    UNION ALL
    SELECT DISTINCT concat('os=', os) AS slice, 1 AS ord
    FROM {simulator}.feed_actions
    WHERE $__timeFilter(time)
)
ORDER BY ord, slice
