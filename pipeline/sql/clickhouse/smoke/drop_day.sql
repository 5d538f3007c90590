-- check: {"partition": 20240101}
-- after: smoke/create_daily
ALTER TABLE {ops}.smoke_daily DROP PARTITION %(partition)s
