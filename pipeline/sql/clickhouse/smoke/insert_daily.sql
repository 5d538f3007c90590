-- check: {}
-- after: smoke/create_daily
-- data: 2024-01-01,alpha,10,12.5,2024-01-02 03:04:05
-- data: 2024-01-01,beta,2,0.25,2024-01-02 03:04:05
INSERT INTO {ops}.smoke_daily (event_date, category, events, amount, loaded_at) FORMAT CSV
