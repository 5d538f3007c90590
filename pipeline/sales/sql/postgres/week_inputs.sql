-- What a week's aggregate is computed from: the files with rows in the week or the week before
-- (the change against the previous week reads it), with their region and row count. A late or
-- corrected file changes this, and the week is recomputed (pipeline.core.periods).
-- check: {"week": "2024-01-15"}
SELECT CASE WHEN sale_date >= %(week)s THEN 'this week' ELSE 'previous week' END AS part,
       file_id, min(region) AS region, count(*) AS rows
FROM sales.sales
WHERE sale_date >= %(week)s::date - 7 AND sale_date < %(week)s::date + 7
GROUP BY part, file_id
ORDER BY part, file_id
