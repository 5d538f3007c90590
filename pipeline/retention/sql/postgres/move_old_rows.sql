-- Rows older than the cutoff, out of the hot table and into its archive in one statement: the
-- DELETE ... RETURNING feeds the INSERT, so a row is always in exactly one of the two.
-- check: {"column": "day", "columns": ["item_id", "day", "amount", "note", "file_id", "loaded_at"], "cutoff": "2024-01-01"}
-- after: retention/create_archive
WITH moved AS (DELETE FROM {table} WHERE {column} < %(cutoff)s RETURNING {columns})
INSERT INTO {archive} ({columns}) SELECT {columns} FROM moved
