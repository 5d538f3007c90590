-- check: {}
-- after: sales/create_sales_agg
-- data: 2024-01-15,North,7,3,120.50,40.17,1,0.25,100.00,20.50,2024-01-16,2024-01-16 09:45:00
-- data: 2024-01-15,South,9,1,10.00,10.00,1,1,\N,\N,2024-01-16,2024-01-16 09:45:00
INSERT INTO {sales}.sales_agg (week_start, region, product_id, sales_count, total_amount,
    avg_sale_amount, rank_in_region, share_of_region, prev_week_amount, change_vs_prev_week,
    import_date, imported_at) FORMAT CSV
