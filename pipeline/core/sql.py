"""Every SQL statement the project issues, PostgreSQL and ClickHouse alike, by name.

A statement is a file beside the code that uses it, addressed as ``"<group>/<name>"``:

- a flow's statements: ``pipeline/<flow>/sql/<engine>/<name>.sql`` (group = the flow);
- the systems' own (load markers, the stage-and-swap replace, databases):
  ``pipeline/systems/sql/<engine>/<group>/<name>.sql``;
- the demo's generators: ``demo/sql/<engine>/<name>.sql`` (group ``demo``);
- the benchmarks' set-up: ``benchmarks/sql/<engine>/<name>.sql`` (group ``benchmarks``).

``<engine>`` is ``clickhouse`` or ``postgres``. Nothing else in the project sends SQL of its own,
so the dialect check (``tests/systems/test_clickhouse_dialect.py``) can run every ClickHouse
statement on the local 18.16 server and on a modern engine (chdb, ClickHouse 26), and every
PostgreSQL statement is parsed by the server (``tests/systems/test_postgres_sql.py``).

PostgreSQL statements are sent with psycopg2's own value parameters (``%(name)s``); identifiers in
them are written out, or are ``{name}`` slots that ``pipeline.systems.postgres.statement`` fills
through ``psycopg2.sql`` (a name, a list of names, or column definitions from a contract).
ClickHouse statements are rendered on the client side (18.16 has no server-side parameters):

- ``{name}`` is an identifier (a database or table name): letters, digits and underscores only.
  The logical databases (``{sales}``, ``{test}``, ...) are filled in by the client from settings.
- ``%(name)s`` is a value, quoted as a ClickHouse literal.

A statement's header comments tell the dialect check how to exercise it:

- ``-- check: {json}`` sample parameters;
- ``-- after: group/name, ...`` statements to run first (with the same parameters);
- ``-- data: <line>`` lines of sample input for an ``INSERT ... FORMAT`` statement.

This module is pure: it reads the packaged SQL files and formats strings, nothing more.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from config.settings import PROJECT_ROOT

ENGINES = ("clickhouse", "postgres")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENT_SLOT = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_VALUE_SLOT = re.compile(r"%\(([a-z_][a-z0-9_]*)\)s")


class SqlError(ValueError):
    """A statement is unknown or its parameters do not fit; the message names both."""


@dataclass(frozen=True)
class Statement:
    name: str
    engine: str
    text: str
    check_params: dict[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()
    data: tuple[str, ...] = ()

    @property
    def identifiers(self) -> set[str]:
        return set(_IDENT_SLOT.findall(self.text))

    @property
    def values(self) -> set[str]:
        return set(_VALUE_SLOT.findall(self.text))


def _parse(name: str, engine: str, raw: str) -> Statement:
    check: dict[str, Any] = {}
    after: list[str] = []
    data: list[str] = []
    body: list[str] = []
    for line in raw.splitlines():
        stripped = line.strip()
        if stripped.startswith("-- check:"):
            check.update(json.loads(stripped[len("-- check:") :]))
        elif stripped.startswith("-- after:"):
            after.extend(p.strip() for p in stripped[len("-- after:") :].split(",") if p.strip())
        elif stripped.startswith("-- data:"):
            data.append(stripped[len("-- data:") :].strip())
        elif stripped.startswith("--"):
            continue
        else:
            body.append(line)
    text = "\n".join(body).strip().rstrip(";").strip()
    if not text:
        raise SqlError(f"{name}: the file holds no statement")
    return Statement(name, engine, text, check, tuple(after), tuple(data))


@cache
def statement_files(engine: str) -> dict[str, Path]:
    """Every statement of an engine: name -> file."""
    if engine not in ENGINES:
        raise SqlError(f"unknown SQL engine {engine!r}: expected one of {', '.join(ENGINES)}")
    found: dict[str, Path] = {}
    for path in PROJECT_ROOT.glob(f"pipeline/*/sql/{engine}/*.sql"):
        found[f"{path.parts[-4]}/{path.stem}"] = path
    for path in PROJECT_ROOT.glob(f"pipeline/systems/sql/{engine}/*/*.sql"):
        found[f"{path.parent.name}/{path.stem}"] = path
    for path in PROJECT_ROOT.glob(f"demo/sql/{engine}/*.sql"):
        found[f"demo/{path.stem}"] = path
    for path in PROJECT_ROOT.glob(f"benchmarks/sql/{engine}/*.sql"):
        found[f"benchmarks/{path.stem}"] = path
    return dict(sorted(found.items()))


@cache
def load(name: str, engine: str = "clickhouse") -> Statement:
    """The statement ``group/name``; an unknown name is an error naming the folders searched."""
    if not re.fullmatch(r"[a-z0-9_]+/[a-z0-9_]+", name):
        raise SqlError(f"bad statement name {name!r}: expected 'group/name'")
    path = statement_files(engine).get(name)
    if path is None:
        group, _, stem = name.partition("/")
        raise SqlError(
            f"no {engine} statement {name!r} (looked for pipeline/{group}/sql/{engine}/{stem}.sql"
            f" and pipeline/systems/sql/{engine}/{group}/{stem}.sql)"
        )
    return _parse(name, engine, path.read_text(encoding="utf-8"))


def all_statements(engine: str = "clickhouse") -> list[Statement]:
    return [load(name, engine) for name in statement_files(engine)]


def literal(value: Any) -> str:
    """A Python value as a ClickHouse literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SqlError(f"cannot send non-finite float {value!r} as a literal")
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return f"'{value.strftime('%Y-%m-%d %H:%M:%S')}'"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        return f"'{escaped}'"
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value) if isinstance(value, (set, frozenset)) else value
        return "(" + ", ".join(literal(v) for v in items) + ")"
    raise SqlError(f"no ClickHouse literal for {type(value).__name__}")


def render_text(name: str, text: str, params: dict[str, Any]) -> str:
    def identifier(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in params:
            raise SqlError(f"{name}: identifier {{{key}}} has no value")
        value = str(params[key])
        if not _IDENTIFIER.fullmatch(value):
            raise SqlError(f"{name}: {{{key}}} = {value!r} is not a plain identifier")
        return value

    def value(key: str) -> str:
        if key not in params:
            raise SqlError(f"{name}: value %({key})s has no value")
        return literal(params[key])

    # Values first: a quoted string may contain braces that are not identifier slots.
    # split() with a group alternates text and slot names: [text, key, text, key, ...].
    parts = _VALUE_SLOT.split(text)
    return "".join(
        value(part) if index % 2 else _IDENT_SLOT.sub(identifier, part)
        for index, part in enumerate(parts)
    )


def render(name: str, params: dict[str, Any] | None = None) -> str:
    """The statement ``name`` with its identifiers and values filled in."""
    return render_text(name, load(name).text, params or {})
