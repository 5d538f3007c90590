-- check: {}
-- after: ops/create_alerts
-- data: 2024-01-17 14:15:00,views,all,alert,1200,2100,1900,2300,-0.43,2024-01-17 14:15:00,2024-01-17 14:31:02
-- data: 2024-01-17 16:00:00,views,all,recovery,2080,2100,1900,2300,-0.01,2024-01-17 14:15:00,2024-01-17 16:16:00
INSERT INTO {ops}.alerts (slot, metric, slice, kind, value, baseline, lower, upper, change, since,
    sent_at) FORMAT CSV
