-- A column the flows filter on (the contract's indexes: the weekly aggregate reads sales by
-- date); BRIN for the same reason as the file index.
-- check: {"index": "sql_check_items_day", "column": "day"}
-- after: inbox/create_table
CREATE INDEX IF NOT EXISTS {index} ON {table} USING brin ({column}) WITH (autosummarize = on)
