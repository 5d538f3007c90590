"""What the activity flow reads and writes, declared once.

Reads ClickHouse ``simulator.feed_actions`` and ``simulator.message_actions``: the app's events.
The app fills them (the demo's simulator fakes it); they are declared here, in
``sql/clickhouse/create_feed_actions.sql`` and ``create_message_actions.sql``, because this flow
is their first reader (the reports and alerts flows read them too). Writes ClickHouse
``test.activity_daily`` (``sql/clickhouse/create_activity_daily.sql``).
"""

from __future__ import annotations

# Named statements creating the app's event tables (idempotent; readers run them so a database
# without events yet gives empty days, not errors).
SOURCE_TABLES_DDL = ("activity/create_feed_actions", "activity/create_message_actions")

# The flow's ClickHouse table (database ``test``).
TABLE = "activity_daily"
