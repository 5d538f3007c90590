-- The messenger's messages: sender, receiver, time, and the sender's attributes.
-- check: {}
CREATE TABLE IF NOT EXISTS {simulator}.message_actions
(
    user_id UInt32,
    receiver_id UInt32,
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
