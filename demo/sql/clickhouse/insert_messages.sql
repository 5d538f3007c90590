-- check: {}
-- after: activity/create_message_actions
-- data: 7,8,2024-01-15 10:01:00,male,25,Russia,Moscow,iOS,organic,2
-- data: 8,7,2024-01-15 10:02:00,female,31,Russia,Kazan,Android,ads,0
-- data: 9,7,2024-01-15 10:30:00,female,19,Belarus,Minsk,Android,organic,1
INSERT INTO {simulator}.message_actions (user_id, receiver_id, time, gender, age, country, city,
    os, source, exp_group) FORMAT CSV
