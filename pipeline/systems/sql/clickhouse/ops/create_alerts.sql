-- Every alert, repeat and recovery the 15-minute check sent (the app's anomaly alerts).
-- check: {}
CREATE TABLE IF NOT EXISTS {ops}.alerts
(
    slot DateTime,
    metric String,
    slice String,
    kind String,
    value Float64,
    baseline Float64,
    lower Float64,
    upper Float64,
    change Float64,
    since DateTime,
    sent_at DateTime
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(slot)
ORDER BY (slot, metric, slice)
