-- One row per completed ClickHouse load (target table, load id). ReplacingMergeTree: writing a
-- marker twice is harmless; readers use count() > 0, so an unmerged duplicate does not matter.
-- check: {}
CREATE TABLE IF NOT EXISTS {ops}.load_markers
(
    target_table String,
    update_id String,
    rows_loaded UInt64,
    loaded_at DateTime
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (target_table, update_id)
