-- Rows, users and users unknown to the CRM for a day (the success summary; no personal data).
-- check: {"day": "2024-01-15"}
-- after: replace/replace_partition
SELECT toUInt64(count()) AS rows, toUInt64(uniqExact(user_id)) AS users,
       toUInt64(countIf(crm_matched = 0)) AS unknown_to_crm,
       toUInt64(sum(total_actions)) AS actions
FROM {bionicpro_reports}.reports_data_mart
WHERE report_date = toDate(%(day)s)
