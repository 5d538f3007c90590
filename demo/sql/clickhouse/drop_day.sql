-- A generated day is replaced: its partition goes first.
-- check: {"table": "feed_actions", "partition": 20240115}
-- after: activity/create_feed_actions
ALTER TABLE {simulator}.{table} DROP PARTITION %(partition)s
