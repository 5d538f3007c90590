-- check: {}
-- after: activity/create_feed_actions
-- data: 7,101,view,2024-01-15 10:00:05,male,25,Russia,Moscow,iOS,organic,2
-- data: 7,101,like,2024-01-15 10:00:09,male,25,Russia,Moscow,iOS,organic,2
-- data: 8,102,view,2024-01-15 10:20:00,female,31,Russia,Kazan,Android,ads,0
INSERT INTO {simulator}.feed_actions (user_id, post_id, action, time, gender, age, country, city,
    os, source, exp_group) FORMAT CSV
