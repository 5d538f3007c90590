"""PostgreSQL I/O: connections, transactions, COPY, and load markers written with the data.

A load marker (``ops.load_markers``) is written in the same transaction as the rows it stands
for, so a crash leaves either both or neither: a rerun never doubles rows and never skips a load
that did not commit (the pattern of ``luigi.contrib.postgres.CopyToTable``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TextIO

import luigi
import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from config.settings import PostgresSettings, load_settings
from pipeline.core.sql import text as statement_text

MARKER_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS ops.load_markers (
    target_table text NOT NULL,
    update_id    text NOT NULL,
    rows_loaded  bigint NOT NULL,
    loaded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (target_table, update_id)
)
"""


class PostgresError(RuntimeError):
    """A PostgreSQL operation failed; the message names the operation and the server's reason."""


def connect(settings: PostgresSettings | None = None) -> psycopg2.extensions.connection:
    pg = settings or load_settings().postgres
    try:
        return psycopg2.connect(**pg.connect_kwargs())
    except psycopg2.OperationalError as exc:
        # psycopg2's message never contains the password; we add where we tried to connect.
        raise PostgresError(
            f"cannot connect to PostgreSQL {pg.user}@{pg.host}:{pg.port}/{pg.database}: "
            f"{str(exc).strip()}"
        ) from exc


# One open connection per process and server: a SCRAM login costs ~10 ms, more than loading a
# small file. Keyed by pid because Luigi's workers fork, and a connection must not cross a fork.
_connections: dict[tuple[int, str, int, str, str], psycopg2.extensions.connection] = {}


def _checkout(settings: PostgresSettings | None) -> tuple[tuple[int, str, int, str, str], Any]:
    pg = settings or load_settings().postgres
    key = (os.getpid(), pg.host, pg.port, pg.database, pg.user)
    conn = _connections.get(key)
    if conn is not None:
        try:
            with conn.cursor() as cur:  # a server restarted since: find out now, not mid-load
                cur.execute("SELECT 1")
            conn.rollback()
        except psycopg2.Error:
            with suppress(psycopg2.Error):
                conn.close()
            conn = None
    if conn is None:
        conn = connect(pg)
        _connections[key] = conn
    return key, conn


@contextmanager
def transaction(
    settings: PostgresSettings | None = None,
) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor inside one transaction: committed on success, rolled back on any error."""
    key, conn = _checkout(settings)
    try:
        with conn, conn.cursor() as cur:
            yield cur
    except (psycopg2.OperationalError, psycopg2.InterfaceError):
        _connections.pop(key, None)
        with suppress(psycopg2.Error):
            conn.close()
        raise


def run(cur: psycopg2.extensions.cursor, name: str, params: dict[str, Any] | None = None) -> None:
    """Execute the named PostgreSQL statement ``group/name`` (``pipeline/<group>/sql/postgres/``)
    with psycopg2's value parameters."""
    cur.execute(statement_text(name), params)


def ensure(name: str, lock: str) -> None:
    """Run a named DDL statement (``CREATE ... IF NOT EXISTS``) in its own transaction, serialized
    with every other process creating ``lock``."""
    with transaction() as cur:
        serialize_ddl(cur, lock)
        run(cur, name)


def serialize_ddl(cur: psycopg2.extensions.cursor, key: str) -> None:
    """Hold a transaction-scoped advisory lock: concurrent ``CREATE ... IF NOT EXISTS`` of the
    same object race in PostgreSQL (a unique violation on pg_type) unless serialized."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ddl:{key}",))


def ensure_marker_table(cur: psycopg2.extensions.cursor) -> None:
    cur.execute("SELECT to_regclass('ops.load_markers') IS NOT NULL")
    row = cur.fetchone()
    if row and row[0]:
        return
    serialize_ddl(cur, "ops.load_markers")
    cur.execute("CREATE SCHEMA IF NOT EXISTS ops")
    cur.execute(MARKER_TABLE_DDL)


def marker_rows(cur: psycopg2.extensions.cursor, table: str, update_id: str) -> int | None:
    """The rows a committed load recorded, or None if that load never committed."""
    cur.execute("SELECT to_regclass('ops.load_markers') IS NOT NULL")
    row = cur.fetchone()
    if not row or not row[0]:
        return None
    cur.execute(
        "SELECT rows_loaded FROM ops.load_markers WHERE target_table = %s AND update_id = %s",
        (table, update_id),
    )
    found = cur.fetchone()
    return None if found is None else int(found[0])


def marker_exists(cur: psycopg2.extensions.cursor, table: str, update_id: str) -> bool:
    return marker_rows(cur, table, update_id) is not None


def write_marker(cur: psycopg2.extensions.cursor, table: str, update_id: str, rows: int) -> None:
    cur.execute(
        "INSERT INTO ops.load_markers (target_table, update_id, rows_loaded) VALUES (%s, %s, %s)"
        " ON CONFLICT (target_table, update_id)"
        " DO UPDATE SET rows_loaded = EXCLUDED.rows_loaded, loaded_at = now()",
        (table, update_id, rows),
    )


def copy_csv(
    cur: psycopg2.extensions.cursor,
    table: str,
    columns: Sequence[str],
    source: TextIO,
) -> int:
    """``COPY table (columns) FROM STDIN`` of CSV with a header; returns the rows copied."""
    schema, _, name = table.rpartition(".")
    target = sql.Identifier(schema, name) if schema else sql.Identifier(name)
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true)").format(
        target, sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    cur.copy_expert(statement.as_string(cur), source, size=1 << 20)
    return int(cur.rowcount)


def summarize_brin(cur: psycopg2.extensions.cursor, table: str) -> int:
    """Summarise the block ranges rows were just appended to, in every BRIN index of ``table``.

    A range without a summary is read whole by every query on the index, and autovacuum only
    gets to it later: without this each week's aggregate would scan most of the table. Run it
    after the load commits (it takes a lock that would otherwise serialise parallel loads)."""
    cur.execute(
        "SELECT coalesce(sum(brin_summarize_new_values(i.indexrelid)), 0)"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam"
        " WHERE i.indrelid = to_regclass(%s) AND am.amname = 'brin'",
        (table,),
    )
    return int(cur.fetchone()[0])  # type: ignore[index]


def rows_to_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> io.StringIO:
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    buffer.seek(0)
    return buffer


class PostgresMarkerTarget(luigi.Target):
    """Exists once the load ``update_id`` into ``table`` has committed."""

    def __init__(self, table: str, update_id: str, settings: PostgresSettings | None = None):
        self.table = table
        self.update_id = update_id
        self.settings = settings

    def exists(self) -> bool:
        with transaction(self.settings) as cur:
            return marker_exists(cur, self.table, self.update_id)
