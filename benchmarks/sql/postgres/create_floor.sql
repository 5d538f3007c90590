-- The physical floor's table: the sales files' columns, no key, no index (psql \copy fills it).
-- check: {}
DROP TABLE IF EXISTS sales.floor_agg;
DROP TABLE IF EXISTS sales.floor;
CREATE TABLE sales.floor (
    sale_id bigint, customer_id bigint, product_id bigint, quantity bigint, sale_date date,
    sale_amount numeric(14, 2), region text
)
