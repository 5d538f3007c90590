-- A dataset's table, from its contract (pipeline.inbox.load.ensure_table): the contract's columns
-- with their types, the file each row came from and when it was loaded; the contract's key.
-- check: {"table": "public.sql_check_items", "definitions": [["item_id", "bigint", false], ["day", "date", false], ["amount", "numeric(14, 2)", false], ["note", "text", true]], "key": ["item_id"]}
CREATE TABLE IF NOT EXISTS {table} (
    {definitions},
    file_id   text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY ({key})
)
