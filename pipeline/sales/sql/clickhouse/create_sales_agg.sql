-- The online store's weekly sales aggregates from PostgreSQL: one row per week x region x
-- product, with the date they were imported. Partitioned by week so a rerun replaces exactly that week.
-- check: {}
CREATE TABLE IF NOT EXISTS {sales}.sales_agg
(
    week_start Date,
    region String,
    product_id UInt64,
    sales_count UInt64,
    total_amount Decimal(18, 2),
    avg_sale_amount Decimal(18, 2),
    rank_in_region UInt32,
    share_of_region Float64,
    prev_week_amount Nullable(Decimal(18, 2)),
    change_vs_prev_week Nullable(Decimal(18, 2)),
    import_date Date,
    imported_at DateTime
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(week_start)
ORDER BY (week_start, region, product_id)
