-- A dataset's archive table, ``<table>_archive``: the hot table's columns and defaults.
-- check: {"archive": "public.sql_check_items_archive"}
-- after: inbox/create_table
CREATE TABLE IF NOT EXISTS {archive} (LIKE {table} INCLUDING DEFAULTS)
