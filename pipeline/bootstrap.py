"""Create the databases and schemas every flow expects: PostgreSQL schemas, ClickHouse databases.

Idempotent. The local stack runs it after the servers answer; the compose stack runs it once as
the ``bootstrap`` service before the runner starts (``python -m pipeline.bootstrap``).
"""

from __future__ import annotations

import sys
import time

from config.settings import CLICKHOUSE_DATABASES, POSTGRES_SCHEMAS, Settings, load_settings
from pipeline.systems import postgres
from pipeline.systems.clickhouse import ClickHouse, ClickHouseError
from pipeline.systems.postgres import PostgresError, transaction


def create_postgres_schemas(settings: Settings) -> list[str]:
    with transaction(settings.postgres) as cur:
        for schema in POSTGRES_SCHEMAS:
            postgres.run(cur, "stack/create_schema", schema=schema)
    return list(POSTGRES_SCHEMAS)


def create_clickhouse_databases(settings: Settings) -> list[str]:
    ch = ClickHouse(settings.clickhouse)
    names = [settings.clickhouse.database(logical) for logical in CLICKHOUSE_DATABASES]
    for name in names:
        ch.execute("stack/create_database", database=name)
    return names


def main(wait_seconds: float = 120.0) -> int:
    settings = load_settings()
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            schemas = create_postgres_schemas(settings)
            databases = create_clickhouse_databases(settings)
            break
        except (PostgresError, ClickHouseError) as exc:
            if time.monotonic() > deadline:
                print(f"bootstrap failed: {exc}", file=sys.stderr)
                return 1
            time.sleep(2)
    print(f"PostgreSQL schemas: {', '.join(schemas)}")
    print(f"ClickHouse databases: {', '.join(databases)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
