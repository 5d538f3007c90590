-- The demo's daily aggregate: one row per day per category. Partitioned by day so that a rerun
-- of a day replaces exactly that day (DROP PARTITION, then insert).
-- check: {}
CREATE TABLE IF NOT EXISTS {ops}.smoke_daily
(
    event_date Date,
    category String,
    events UInt64,
    amount Float64,
    loaded_at DateTime
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(event_date)
ORDER BY (event_date, category)
