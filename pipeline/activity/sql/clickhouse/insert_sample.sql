-- Sample rows for the dialect check of the queries on the table (not used by the flow, which
-- loads through replace/insert_stage).
-- check: {}
-- after: activity/create_activity_daily
-- data: 2024-01-15,os,Android,900,180,40,42,30,31
-- data: 2024-01-15,os,iOS,500,110,20,19,15,14
-- data: 2024-01-15,gender,male,700,140,30,31,22,23
-- data: 2024-01-15,gender,female,700,150,30,30,23,22
-- data: 2024-01-14,os,Android,800,150,35,35,25,26
INSERT INTO {test}.activity_daily FORMAT CSV
