-- The BionicPRO reporting mart: one row per user x prosthesis x day, telemetry joined with CRM.
-- Partitioned by month and ordered as the requirement asks; a day is replaced by rebuilding its
-- month partition in a stage table and swapping it in (telemetry/replace_month), so a rerun of a day
-- never duplicates it. crm_matched = 0: the user is unknown to the CRM (CRM fields empty).
-- check: {}
CREATE TABLE IF NOT EXISTS {bionicpro_reports}.reports_data_mart
(
    report_date Date,
    user_id UInt64,
    prosthesis_id String,
    email String,
    first_name String,
    last_name String,
    order_date Nullable(Date),
    status String,
    crm_matched UInt8,
    total_actions UInt64,
    avg_response_time Float64,
    max_response_time Float64,
    min_response_time Float64,
    grasp_count UInt64,
    release_count UInt64,
    flex_count UInt64,
    avg_battery_level Float64,
    min_battery_level Float64,
    total_usage_seconds UInt64,
    usage_hours Float64,
    actions_per_hour Float64,
    efficiency_score Float64,
    loaded_at DateTime
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(report_date)
PRIMARY KEY (user_id, report_date)
ORDER BY (user_id, report_date, prosthesis_id)
