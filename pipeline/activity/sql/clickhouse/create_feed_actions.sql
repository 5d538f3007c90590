-- The news feed's actions (the app's events): one row per view or like, with the user's attributes.
-- A partition per day, so the generator replaces a day and the ETL reads one.
-- check: {}
CREATE TABLE IF NOT EXISTS {simulator}.feed_actions
(
    user_id UInt32,
    post_id UInt32,
    action String,
    time DateTime,
    gender String,
    age UInt8,
    country String,
    city String,
    os String,
    source String,
    exp_group UInt8
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(time)
ORDER BY (time, user_id)
