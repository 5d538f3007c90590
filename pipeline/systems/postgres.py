"""PostgreSQL I/O: connections, transactions, COPY, and load markers written with the data.

A load marker (``ops.load_markers``) is written in the same transaction as the rows it stands
for, so a crash leaves either both or neither: a rerun never doubles rows and never skips a load
that did not commit (the pattern of ``luigi.contrib.postgres.CopyToTable``).

Every statement sent is a named file (``pipeline.core.sql``): ``run(cur, "group/name", {values},
**identifiers)``, the values as psycopg2 parameters, the identifiers composed by psycopg2.sql.

Every call is bounded in time: each connection carries ``statement_timeout``, ``lock_timeout``
and TCP keepalives (settings ``PIPELINE_PG_*``), and a statement cancelled by them raises
``PostgresTimeout`` naming the statement and the setting, never a wait without end.
``advisory_lock`` serialises work across processes and hosts without luigid (a ClickHouse
period's replace, a notification's delivery).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TextIO

import luigi
import psycopg2
import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

from config.settings import PostgresSettings, load_settings
from pipeline.core.errors import ServerUnavailable
from pipeline.core.sql import SqlError, load

# What fills a statement's ``{slot}``: a name ("schema.table" is qualified), a list of names
# (joined by commas), or a piece already composed through psycopg2.sql.
Name = str | Sequence[str] | sql.Composable

# A column type as the contracts declare it: ``bigint``, ``numeric(14, 2)``, ``timestamptz``.
_TYPE = re.compile(r"[a-z][a-z ]*[a-z](\(\d+(, ?\d+)?\))?")


class PostgresError(RuntimeError):
    """A PostgreSQL operation failed; the message names the operation and the server's reason."""


class PostgresUnavailable(PostgresError, ServerUnavailable):
    """PostgreSQL does not answer (refused, reset, timed out): no file's or period's fault."""


class PostgresTimeout(PostgresError):
    """A statement was cancelled by ``statement_timeout`` or ``lock_timeout``: the message names
    the statement, the limit, the setting and where to look."""


def bounded_options(pg: PostgresSettings) -> dict[str, Any]:
    """Connection options that bound every call: the server cancels a statement running longer
    than ``statement_timeout`` or waiting longer than ``lock_timeout`` for a lock, and TCP
    keepalives find a half-open connection (a peer gone without a word)."""
    return {
        "options": (
            f"-c statement_timeout={int(pg.statement_timeout_s * 1000)}"
            f" -c lock_timeout={int(pg.lock_timeout_s * 1000)}"
        ),
        "keepalives": 1,
        "keepalives_idle": pg.keepalives_idle_s,
        "keepalives_interval": pg.keepalives_interval_s,
        "keepalives_count": pg.keepalives_count,
    }


def connect(settings: PostgresSettings | None = None) -> psycopg2.extensions.connection:
    pg = settings or load_settings().postgres
    try:
        return psycopg2.connect(**pg.connect_kwargs(), **bounded_options(pg))
    except psycopg2.OperationalError as exc:
        # psycopg2's message never contains the password; we add where we tried to connect.
        raise PostgresUnavailable(
            f"cannot connect to PostgreSQL {pg.user}@{pg.host}:{pg.port}/{pg.database}: "
            f"{str(exc).strip()}"
        ) from exc


# One open connection per process and server: a SCRAM login costs ~10 ms, more than loading a
# small file. Keyed by pid because Luigi's workers fork, and a connection must not cross a fork.
_connections: dict[tuple[int, str, int, str, str], psycopg2.extensions.connection] = {}
# A connection idle longer than this is pinged before use (a server restarted meanwhile is found
# now and reconnected to, not mid-load); one used a moment ago goes straight on: a restart since
# then makes the next statement fail as a lost connection (PostgresUnavailable), which stops a
# run without blaming its input. A ping per transaction was ~3 round trips per file loaded.
PING_IDLE_S = 1.0
_last_used: dict[tuple[int, str, int, str, str], float] = {}


def _session_key(pg: PostgresSettings) -> tuple[int, str, int, str, str]:
    """Whose session: this process's (a session must not cross a fork), on this server."""
    return (os.getpid(), pg.host, pg.port, pg.database, pg.user)


def _checkout(settings: PostgresSettings | None) -> tuple[tuple[int, str, int, str, str], Any]:
    pg = settings or load_settings().postgres
    key = _session_key(pg)
    conn = _connections.get(key)
    if conn is not None and time.monotonic() - _last_used.get(key, 0.0) > PING_IDLE_S:
        try:
            with conn.cursor() as cur:  # a server restarted since: find out now, not mid-load
                run(cur, "session/ping")
            conn.rollback()
        except psycopg2.Error:
            with suppress(psycopg2.Error):
                conn.close()
            if key in _locks_on_main:  # the session held an advisory lock: it went with it
                _connections.pop(key, None)
                raise PostgresUnavailable(
                    "PostgreSQL session lost while it held an advisory lock: the lock is gone"
                    " with it, so the locked work stops here (the next run redoes it)"
                ) from None
            conn = None
    if conn is None:
        conn = connect(pg)
        _connections[key] = conn
    return key, conn


@contextmanager
def transaction(
    settings: PostgresSettings | None = None,
    repeatable_read: bool = False,
) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor inside one transaction: committed on success, rolled back on any error.
    ``repeatable_read``: every statement of it sees one snapshot (a period's inputs, its
    computation and its checks agree exactly)."""
    key, conn = _checkout(settings)
    try:
        if repeatable_read:
            conn.isolation_level = psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ
        try:
            with conn, conn.cursor() as cur:
                yield cur
        finally:
            if repeatable_read and not conn.closed:
                conn.isolation_level = psycopg2.extensions.ISOLATION_LEVEL_DEFAULT
            _last_used[key] = time.monotonic()
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        _connections.pop(key, None)
        with suppress(psycopg2.Error):
            conn.close()
        if isinstance(exc, psycopg2.InterfaceError) or exc.pgcode is None:
            # No SQLSTATE: the connection itself went (server stopped, network cut).
            raise PostgresUnavailable(
                f"PostgreSQL connection lost: {str(exc).strip() or type(exc).__name__}"
            ) from exc
        raise


def ping(settings: PostgresSettings | None = None) -> None:
    """Raise ``PostgresUnavailable`` unless PostgreSQL answers (a run checks before it starts
    work that needs it)."""
    with transaction(settings) as cur:
        run(cur, "session/ping")


def identifier(name: Name) -> sql.Composable:
    """A name for a statement's ``{slot}``, quoted by psycopg2: ``"sales.sales"`` becomes
    ``"sales"."sales"``, a list of names a comma-separated list, a composed piece stays as it is."""
    if isinstance(name, sql.Composable):
        return name
    if isinstance(name, str):
        return sql.Identifier(*name.split("."))
    return sql.SQL(", ").join(sql.Identifier(part) for part in name)


def column_definitions(columns: Iterable[tuple[str, str, bool]]) -> sql.Composable:
    """``name type [NOT NULL], ...`` for a ``{slot}`` of a CREATE TABLE, from (name, type,
    nullable) triples: the names quoted, the types checked to be type names (they come from a
    contract's fixed type map, never from input)."""
    parts = []
    for name, type_, nullable in columns:
        if not _TYPE.fullmatch(type_):
            raise SqlError(f"column {name}: {type_!r} is not a PostgreSQL type name")
        parts.append(
            sql.SQL("{} {}{}").format(
                sql.Identifier(name), sql.SQL(type_), sql.SQL("" if nullable else " NOT NULL")
            )
        )
    return sql.SQL(", ").join(parts)


def statement(name: str, **names: Name) -> sql.Composable:
    """The named PostgreSQL statement ``group/name`` with its ``{slot}`` identifiers filled in
    through psycopg2.sql; its ``%(value)s`` parameters are left for psycopg2 to send."""
    loaded = load(name, "postgres")
    slots = loaded.identifiers
    if slots != set(names):
        missing, extra = sorted(slots - set(names)), sorted(set(names) - slots)
        raise SqlError(f"{name}: identifiers missing {missing}, unknown {extra}")
    return sql.SQL(loaded.text).format(**{k: identifier(v) for k, v in names.items()})


def run(
    cur: psycopg2.extensions.cursor,
    name: str,
    params: dict[str, Any] | None = None,
    **names: Name,
) -> None:
    """Execute the named PostgreSQL statement ``group/name`` (``pipeline/<group>/sql/postgres/``
    or ``pipeline/systems/sql/postgres/<group>/``) with psycopg2's value parameters; ``names``
    fill its ``{slot}`` identifiers."""
    with bounded(name):
        cur.execute(statement(name, **names), params)


@contextmanager
def bounded(name: str, settings: PostgresSettings | None = None) -> Iterator[None]:
    """Turn a statement cancelled by ``lock_timeout`` or ``statement_timeout`` into a
    ``PostgresTimeout`` that says which statement, which limit and where to look."""
    try:
        yield
    except psycopg2.errors.LockNotAvailable as exc:
        pg = settings or load_settings().postgres
        raise PostgresTimeout(
            f"{name}: gave up waiting {pg.lock_timeout_s:g} s for a lock another session holds"
            " (lock_timeout, setting PIPELINE_PG_LOCK_TIMEOUT_S); see pg_locks and"
            " pg_stat_activity for the holder"
        ) from exc
    except psycopg2.errors.QueryCanceled as exc:
        pg = settings or load_settings().postgres
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "cancelled"
        raise PostgresTimeout(
            f"{name}: {reason} (statement_timeout {pg.statement_timeout_s:g} s, setting"
            " PIPELINE_PG_STATEMENT_TIMEOUT_S)"
        ) from exc


def fetch_value(
    cur: psycopg2.extensions.cursor,
    name: str,
    params: dict[str, Any] | None = None,
    **names: Name,
) -> Any:
    """The first column of the first row of a named query (None if it returns no row)."""
    run(cur, name, params, **names)
    row = cur.fetchone()
    return None if row is None else row[0]


def ensure(name: str, lock: str) -> None:
    """Run a named DDL statement (``CREATE ... IF NOT EXISTS``) in its own transaction, serialized
    with every other process creating ``lock``."""
    with transaction() as cur:
        serialize_ddl(cur, lock)
        run(cur, name)


def serialize_ddl(cur: psycopg2.extensions.cursor, key: str) -> None:
    """Hold a transaction-scoped advisory lock: concurrent ``CREATE ... IF NOT EXISTS`` of the
    same object race in PostgreSQL (a unique violation on pg_type) unless serialized."""
    run(cur, "session/ddl_lock", {"key": f"ddl:{key}"})


def lock_key(name: str) -> int:
    """A stable 64-bit advisory lock key for a name (the same on every host and version)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LockTimeout(PostgresTimeout):
    """Another run holds the lock for longer than this one may wait."""


# Idle sessions for advisory locks, per process and server: a lock's session is reused by the
# next lock (a SCRAM login per lock cost ~5 ms on each side, twice per week of a backfill). A
# lock held takes a session of its own, so two locks in one process never share one and a
# second hold of the same name waits as it would in another process.
_idle_lock_sessions: dict[tuple[int, str, int, str, str], list[psycopg2.extensions.connection]] = {}


def _lock_session(pg: PostgresSettings) -> tuple[psycopg2.extensions.connection, bool]:
    """An autocommit session for an advisory lock: (session, reused)."""
    idle = _idle_lock_sessions.setdefault(_session_key(pg), [])
    while idle:
        conn = idle.pop()
        if not conn.closed:
            return conn, True
    conn = connect(pg)
    conn.autocommit = True
    return conn, False


# The processes' own sessions (``_connections``) holding an advisory lock now: one lock at a
# time there; a second lock meanwhile takes a session of its own, as it would in another process.
_locks_on_main: set[tuple[int, str, int, str, str]] = set()


def _take_lock(
    cur: psycopg2.extensions.cursor,
    timeout_statement: str,
    name: str,
    key: int,
    wait_s: float,
    setting: str,
    began: float,
) -> None:
    """Wait up to ``wait_s`` for the advisory lock ``key`` (``timeout_statement`` sets the wait
    for the session or for the transaction); ``LockTimeout`` names the lock and the setting."""
    run(cur, timeout_statement, {"ms": str(max(1, int(wait_s * 1000)))})
    try:
        run(cur, "session/advisory_lock", {"key": key})
    except PostgresTimeout as exc:
        raise LockTimeout(
            f"{name}: waited {time.monotonic() - began:.1f} s for another run holding"
            f" this lock (limit {wait_s:g} s, setting {setting}); find the holder in"
            " pg_locks (locktype advisory) and pg_stat_activity"
        ) from exc


@contextmanager
def _lock_on_main(
    conn: psycopg2.extensions.connection,
    main_key: tuple[int, str, int, str, str],
    name: str,
    key: int,
    wait_s: float,
    setting: str,
    began: float,
) -> Iterator[None]:
    """``advisory_lock`` on the process's own session while it is between transactions: taken
    in a transaction of its own with a transaction-local ``lock_timeout`` (the session's stays),
    held at session level across the block's transactions, released at its end. Lost with the
    session: a SIGKILLed holder's lock goes with it; a session found broken is dropped."""
    try:
        with conn, conn.cursor() as cur:
            _take_lock(cur, "session/set_local_lock_timeout", name, key, wait_s, setting, began)
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        _connections.pop(main_key, None)
        with suppress(psycopg2.Error):
            conn.close()
        raise PostgresUnavailable(
            f"PostgreSQL connection lost: {str(exc).strip() or type(exc).__name__}"
        ) from exc
    _locks_on_main.add(main_key)
    try:
        yield
    finally:
        _locks_on_main.discard(main_key)
        released = False
        if _connections.get(main_key) is conn and not conn.closed:
            try:
                with conn, conn.cursor() as cur:
                    released = bool(fetch_value(cur, "session/advisory_unlock", {"key": key}))
            except psycopg2.Error:
                released = False
        if not released:  # in doubt: end the session, which ends its locks
            if _connections.get(main_key) is conn:
                _connections.pop(main_key, None)
            with suppress(psycopg2.Error):
                conn.close()
        _last_used[main_key] = time.monotonic()


@contextmanager
def advisory_lock(
    name: str,
    wait_s: float,
    setting: str = "PIPELINE_PERIOD_LOCK_TIMEOUT_S",
    settings: PostgresSettings | None = None,
) -> Iterator[None]:
    """Hold a PostgreSQL session advisory lock named ``name`` for the block: one holder at a
    time across processes and hosts, no luigid needed. Waits up to ``wait_s`` seconds (the
    setting named ``setting``) for another holder, then raises ``LockTimeout`` naming the lock.

    The lock is a session lock, never a transaction's, so the block may commit as often as it
    likes. It is taken on the process's own session (``transaction()``'s) when that session is
    between transactions and holds no other lock (no login per lock); otherwise, on a session of
    its own, kept for the next lock. A holder killed by SIGKILL loses its session and with it
    the lock (a process that forked children which are still running shares its sessions' sockets
    with them: its locks end when they do), TCP keepalives end a half-open one, and a session
    found broken while it holds a lock stops the block (``PostgresUnavailable``) instead of
    going on unlocked. The lock is released at the end of the block (the session closed instead
    if the release is in any doubt)."""
    pg = settings or load_settings().postgres
    key = lock_key(name)
    began = time.monotonic()
    main_key, main = _checkout(pg)  # the process's own session (made now if it has none)
    if main_key not in _locks_on_main and main.status == psycopg2.extensions.STATUS_READY:
        # The process's own session, between transactions: no login for the lock.
        with _lock_on_main(main, main_key, name, key, wait_s, setting, began):
            yield
        return
    for attempt in (1, 2):
        conn, reused = _lock_session(pg)
        try:
            with conn.cursor() as cur:
                _take_lock(cur, "session/set_lock_timeout", name, key, wait_s, setting, began)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            with suppress(psycopg2.Error):
                conn.close()
            if reused and attempt == 1 and getattr(exc, "pgcode", None) is None:
                continue  # an idle session the server dropped meanwhile: a new one
            raise
        except BaseException:
            with suppress(psycopg2.Error):
                conn.close()
            raise
        break
    released = False
    try:
        yield
    finally:
        try:
            with conn.cursor() as cur:
                released = bool(fetch_value(cur, "session/advisory_unlock", {"key": key}))
        except psycopg2.Error:
            released = False
        if released:
            _idle_lock_sessions[_session_key(pg)].append(conn)
        else:
            with suppress(psycopg2.Error):
                conn.close()  # closing the session releases its advisory locks


# Tables this process has made sure of: (pid, host, port, database, user, table). Keyed by
# pid like the sessions: a forked task checks once for itself.
_tables_made: set[tuple[int, str, int, str, str, str]] = set()


def ensure_table_once(table: str, statement: str) -> None:
    """``table`` exists, made by the named ``CREATE`` statement if missing (serialised with other
    processes making it); checked once per process and database."""
    key = (*_session_key(load_settings().postgres), table)
    if key in _tables_made:
        return
    with transaction() as cur:
        ensure_table(cur, table, statement)
    _tables_made.add(key)


def ensure_table(cur: psycopg2.extensions.cursor, table: str, statement: str) -> None:
    """``table`` exists in ``cur``'s transaction, made by the named ``CREATE`` statement if
    missing; the DDL lock (held to the commit) only then."""
    if not table_exists(cur, table):
        serialize_ddl(cur, table)
        run(cur, statement)


def forget_made_tables() -> None:
    """Forget which tables this process made sure of (after it dropped some)."""
    _tables_made.clear()


def table_exists(cur: psycopg2.extensions.cursor, table: str) -> bool:
    return bool(fetch_value(cur, "table/exists", {"table": table}))


def ensure_marker_table(cur: psycopg2.extensions.cursor) -> None:
    if table_exists(cur, "ops.load_markers"):
        return
    serialize_ddl(cur, "ops.load_markers")
    run(cur, "ops/create_load_markers")


def marker_rows(cur: psycopg2.extensions.cursor, table: str, update_id: str) -> int | None:
    """The rows a committed load recorded, or None if that load never committed."""
    if not table_exists(cur, "ops.load_markers"):
        return None
    found = fetch_value(cur, "ops/load_marker_rows", {"table": table, "update_id": update_id})
    return None if found is None else int(found)


def marker_exists(cur: psycopg2.extensions.cursor, table: str, update_id: str) -> bool:
    return marker_rows(cur, table, update_id) is not None


def write_marker(cur: psycopg2.extensions.cursor, table: str, update_id: str, rows: int) -> None:
    run(cur, "ops/write_load_marker", {"table": table, "update_id": update_id, "rows": rows})


def copy_csv(
    cur: psycopg2.extensions.cursor,
    table: str,
    columns: Sequence[str],
    source: TextIO,
) -> int:
    """``COPY table (columns) FROM STDIN`` of CSV with a header; returns the rows copied."""
    copy = statement("table/copy_csv", table=table, columns=list(columns))
    with bounded("table/copy_csv"):
        cur.copy_expert(copy.as_string(cur), source, size=1 << 20)
    return int(cur.rowcount)


def summarize_brin(cur: psycopg2.extensions.cursor, table: str) -> int:
    """Summarise the block ranges rows were just appended to, in every BRIN index of ``table``.

    A range without a summary is read whole by every query on the index, and autovacuum only
    gets to it later: without this each week's aggregate would scan most of the table. Run it
    after the load commits (it takes a lock that would otherwise serialise parallel loads)."""
    return int(fetch_value(cur, "table/summarize_brin", {"table": table}))


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
