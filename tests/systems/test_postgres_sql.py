"""Every PostgreSQL statement the project issues is accepted by the real server, and no module
builds SQL by formatting strings.

Each statement of the registry (``pipeline/<flow>/sql/postgres``,
``pipeline/systems/sql/postgres/<group>``, ``demo/sql/postgres``, ``benchmarks/sql/postgres``) runs
after the statements its ``-- after:`` header names, with its ``-- check:`` sample parameters,
inside a transaction that is rolled back: PostgreSQL's DDL is transactional, so the test database
is left as it was. The datasets' tables are created first, as the inbox creates them from the
contracts. ``CREATE DATABASE`` / ``DROP DATABASE`` cannot run in a transaction: they run in
autocommit on a scratch database of this session.
"""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2.extensions
import pytest

from config.settings import load_settings
from pipeline.core.sql import Statement, all_statements, load
from pipeline.inbox.contract import CONTRACTS
from pipeline.inbox.load import ensure_table
from pipeline.systems import postgres

ROOT = Path(__file__).resolve().parents[2]
STATEMENTS = all_statements("postgres")
DATABASE_DDL = re.compile(r"(CREATE|DROP)\s+DATABASE\b")


def plan(statement: Statement) -> list[Statement]:
    """The statement's dependencies (depth first, once each), then the statement."""
    ordered: list[Statement] = []

    def visit(s: Statement) -> None:
        for name in s.after:
            visit(load(name, "postgres"))
        if s.name not in {o.name for o in ordered}:
            ordered.append(s)

    visit(statement)
    return ordered


def as_name(value: Any) -> postgres.Name:
    """A ``-- check:`` sample for an identifier slot: a name, a list of names, or column
    definitions as ``[name, type, nullable]`` triples."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        return postgres.column_definitions((str(n), str(t), bool(z)) for n, t, z in value)
    return value


def execute(cur: psycopg2.extensions.cursor, step: Statement, params: dict[str, Any]) -> None:
    names = {slot: as_name(params[slot]) for slot in step.identifiers}
    values = {key: params[key] for key in step.values} or None
    if step.text.lstrip().upper().startswith("COPY"):  # FROM STDIN: the -- data: lines
        copy = postgres.statement(step.name, **names).as_string(cur)
        cur.copy_expert(copy, io.StringIO("\n".join(step.data) + "\n"))
    else:
        postgres.run(cur, step.name, values, **names)


@pytest.fixture(scope="module")
def connection(stack: None) -> Iterator[psycopg2.extensions.connection]:
    conn = postgres.connect()
    yield conn
    conn.close()


def test_the_registry_holds_the_postgres_statements() -> None:
    names = {s.name for s in STATEMENTS}
    assert {"ops/create_load_markers", "sales/aggregate_week", "telemetry/extract_day"} <= names


@pytest.mark.integration
@pytest.mark.parametrize("statement", STATEMENTS, ids=[s.name for s in STATEMENTS])
def test_statement_is_accepted_by_postgresql(
    statement: Statement, connection: psycopg2.extensions.connection
) -> None:
    steps = plan(statement)
    params: dict[str, Any] = {}
    for step in steps:  # the statement's own samples win over its dependencies'
        params.update(step.check_params)
    if DATABASE_DDL.match(statement.text):
        scratch = f"{load_settings().postgres.database}_sql_check"
        connection.autocommit = True
        try:
            with connection.cursor() as cur:
                execute(cur, statement, {**params, "database": scratch})
                postgres.run(cur, "stack/drop_database", database=scratch)
        finally:
            connection.autocommit = False
        return
    step = statement
    try:
        with connection.cursor() as cur:
            for contract in CONTRACTS.values():
                ensure_table(cur, contract)
            for step in steps:
                execute(cur, step, params)
    except psycopg2.Error as exc:
        pytest.fail(f"PostgreSQL refused {statement.name} ({step.name}):\n{exc}")
    finally:
        connection.rollback()


# SQL text starts with one of these (the project writes SQL keywords in capitals).
SQL_START = re.compile(
    r"\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|WITH|TRUNCATE|COPY|SET|GRANT|REVOKE"
    r"|VACUUM|ANALYZE|REFRESH|LOCK|PREPARE|EXECUTE)\s"
)
# stack/ is left out: it bootstraps the server as its superuser through psql scripts (the role,
# the database, schemas owned by the role) before the project's own connection can exist.
PACKAGES = ("pipeline", "demo", "flags", "monitoring", "benchmarks")


def _leading_text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        return _leading_text(node.values[0])
    return None


def formatted_sql(source: str) -> list[int]:
    """Lines where SQL text is built by an f-string, ``%``, ``+`` or ``str.format``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        texts: list[str | None] = []
        if isinstance(node, ast.JoinedStr) and any(
            isinstance(v, ast.FormattedValue) for v in node.values
        ):
            texts = [_leading_text(node)]
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
            texts = [_leading_text(node.left)]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
        ):
            texts = [_leading_text(node.func.value)]
        if any(text is not None and SQL_START.match(text) for text in texts):
            found.append(getattr(node, "lineno", 0))
    return found


def test_the_scan_finds_sql_built_by_formatting() -> None:
    source = (
        'a = f"SELECT * FROM {table}"\n'
        'b = "DELETE FROM t WHERE x = %s" % value\n'
        'c = "CREATE TABLE {} (x int)".format(name)\n'
        'd = "DROP TABLE " + name\n'
        'e = sql.SQL("SELECT {} FROM t").format(sql.Identifier(c))\n'
        'f = f"{n} rows; see SELECT.md"\n'
        'g = "SELECT 1"\n'
    )
    assert formatted_sql(source) == [1, 2, 3, 4]


def test_no_module_builds_sql_by_formatting_strings() -> None:
    """SQL comes from the statement files; identifiers go through psycopg2.sql or the loader."""
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for package in PACKAGES
        for path in sorted((ROOT / package).glob("**/*.py"))
        for line in formatted_sql(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders
