-- The regions with rows in the week (a region without files is reported, not aggregated).
-- check: {"week": "2024-01-15"}
SELECT DISTINCT region
FROM sales.sales
WHERE sale_date >= %(week)s AND sale_date < %(week)s::date + 7
