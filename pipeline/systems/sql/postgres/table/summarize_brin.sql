-- Summarise the block ranges rows were just appended to, in every BRIN index of the table; the
-- number of ranges summarised.
-- check: {"table": "sales.sales"}
SELECT coalesce(sum(brin_summarize_new_values(i.indexrelid)), 0)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am am ON am.oid = c.relam
WHERE i.indrelid = to_regclass(%(table)s) AND am.amname = 'brin'
