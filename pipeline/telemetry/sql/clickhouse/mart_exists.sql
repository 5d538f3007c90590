-- Whether the mart table exists (CreateDataMartTable's output); database = the real name.
-- check: {"database": "dialect_bionicpro_reports"}
-- after: telemetry/create_mart
SELECT toUInt8(count()) AS present
FROM system.tables
WHERE database = %(database)s AND name = 'reports_data_mart'
