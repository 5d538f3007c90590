-- The weekly aggregate: one row per week x region x product, with its rank and share in the
-- region and the change against the previous week. A rerun of a week replaces the week's rows.
-- check: {}
CREATE TABLE IF NOT EXISTS sales.sales_agg (
    week_start          date NOT NULL,
    region              text NOT NULL,
    product_id          bigint NOT NULL,
    sales_count         bigint NOT NULL,
    total_amount        numeric(16, 2) NOT NULL,
    avg_sale_amount     numeric(16, 2) NOT NULL,
    rank_in_region      integer NOT NULL,
    share_of_region     numeric(9, 6) NOT NULL,
    prev_week_amount    numeric(16, 2),
    change_vs_prev_week numeric(16, 2),
    computed_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (week_start, region, product_id)
)
