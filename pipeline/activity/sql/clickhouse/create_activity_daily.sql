-- The daily user activity table (schema test, as the requirement names it): per day, per slice
-- (os, gender, age) and its value, the users' views, likes and messages. Grows by a day per run; a rerun of a day
-- replaces it (pipeline.systems.clickhouse.replace_day). Ready for Redash / Grafana (README).
-- check: {}
CREATE TABLE IF NOT EXISTS {test}.activity_daily
(
    event_date Date,
    dimension String,
    dimension_value String,
    views UInt64,
    likes UInt64,
    messages_received UInt64,
    messages_sent UInt64,
    users_received UInt64,
    users_sent UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (event_date, dimension, dimension_value)
