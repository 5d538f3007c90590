-- Rows by the file they came from. BRIN, not B-tree: rows arrive a file at a time, roughly in
-- date order, so block ranges summarise them well, and a COPY pays almost nothing to keep them
-- (two B-trees doubled it).
-- check: {"index": "sql_check_items_file_id"}
-- after: inbox/create_table
CREATE INDEX IF NOT EXISTS {index} ON {table}
USING brin (file_id) WITH (pages_per_range = 8, autosummarize = on)
