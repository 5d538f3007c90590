"""What the telemetry mart flow reads and writes, declared once.

Reads PostgreSQL ``telemetry.usage_sessions`` and ``telemetry.device_events`` (the device
telemetry: declared here, in ``sql/postgres/create_sources.sql``, because this flow is their
reader; the demo's generator fills them) and the CRM's customers (HTTP API). Writes ClickHouse
``bionicpro_reports.reports_data_mart`` (``sql/clickhouse/create_mart.sql``).
"""

from __future__ import annotations

# The device's action types (a CHECK constraint of telemetry.device_events).
ACTIONS = ("grasp", "release", "flex")

# The named statement that creates the source tables (idempotent).
SOURCES_DDL = "telemetry/create_sources"

# The mart's ClickHouse table (database ``bionicpro_reports``).
MART = "reports_data_mart"

# Work files under ``<runtime>/telemetry/<date>/`` that hold personal data (the CRM's e-mails and
# names): mode 0600, deleted by the retention flow after PIPELINE_RETENTION_PERSONAL_DAYS.
PERSONAL_WORK_FILES = ("crm.parquet", "mart.parquet")
