"""The dialect check: every ClickHouse statement the project issues runs on both engines.

Production runs ClickHouse 24+; the local stack has Debian's 18.16. Each statement of the registry
(``pipeline/<flow>/sql/clickhouse``, ``pipeline/systems/sql/clickhouse/<group>``,
``demo/sql/clickhouse``: the only places the project's ClickHouse SQL lives, the dashboards'
panels included) is run, after the statements it names in ``-- after:``, on the local 18.16
server and on chdb (ClickHouse 26 in-process), in scratch databases. A SELECT must give the same
rows on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from config.settings import CLICKHOUSE_DATABASES, load_settings
from monitoring.dashboards import expand_macros
from pipeline.core.sql import Statement, all_statements, load, render

pytestmark = pytest.mark.integration

SCRATCH = {logical: f"dialect_{logical}" for logical in CLICKHOUSE_DATABASES}


def plan(statement: Statement) -> list[Statement]:
    """The statement's dependencies (depth first, once each), then the statement."""
    ordered: list[Statement] = []

    def visit(s: Statement) -> None:
        for name in s.after:
            visit(load(name))
        if s.name not in {o.name for o in ordered}:
            ordered.append(s)

    visit(statement)
    return ordered


def sql_for(s: Statement, params: dict[str, Any]) -> tuple[str, str | None]:
    # Dashboard panels filter with Grafana's $__timeFilter: expanded as the plugin does it.
    text = expand_macros(render(s.name, {**SCRATCH, **s.check_params, **params}))
    data = "\n".join(s.data) + "\n" if s.data else None
    return text, data


def is_query(s: Statement) -> bool:
    return s.text.lstrip().upper().startswith(("SELECT", "WITH"))


class LocalServer:
    def __init__(self) -> None:
        self.url = load_settings().clickhouse.http_url

    def run(self, sql: str, data: str | None = None) -> str:
        if data is None:
            response = requests.post(self.url, data=sql.encode(), timeout=60)
        else:
            response = requests.post(
                self.url, params={"query": sql}, data=data.encode(), timeout=60
            )
        assert response.status_code == 200, f"ClickHouse 18.16 refused:\n{sql}\n{response.text}"
        return response.text


class Chdb:
    def __init__(self, path: Path) -> None:
        from chdb import session

        self.session = session.Session(str(path))

    def run(self, sql: str, data: str | None = None) -> str:
        full = sql if data is None else f"{sql}\n{data}"
        try:
            result = self.session.query(full, "TabSeparated")
        except Exception as exc:  # chdb raises its own error type
            pytest.fail(f"ClickHouse 26 (chdb) refused:\n{sql}\n{exc}")
        return str(result)

    def close(self) -> None:
        self.session.close()


@pytest.fixture(scope="module")
def engines(stack: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    chdb = Chdb(tmp_path_factory.mktemp("chdb"))
    yield {"clickhouse-18.16": LocalServer(), "chdb-26": chdb}
    chdb.close()


def reset(engine: Any) -> None:
    for database in SCRATCH.values():
        engine.run(f"DROP DATABASE IF EXISTS {database}")
        engine.run(f"CREATE DATABASE {database}")


STATEMENTS = all_statements()


@pytest.mark.parametrize("statement", STATEMENTS, ids=[s.name for s in STATEMENTS])
def test_statement_runs_on_both_engines(statement: Statement, engines: dict[str, Any]) -> None:
    results: dict[str, str] = {}
    for label, engine in engines.items():
        reset(engine)
        for step in plan(statement):
            sql, data = sql_for(step, statement.check_params)
            if step is statement and is_query(step):
                results[label] = engine.run(sql + "\nFORMAT TabSeparated")
            else:
                engine.run(sql, data)
    if is_query(statement):
        old, new = results.values()
        if "ORDER BY" not in statement.text.upper():
            # No order asked for (a UNION ALL of per-table counts): either engine may give the
            # parts in any order, and the callers key the rows; the rows must agree.
            old, new = "\n".join(sorted(old.splitlines())), "\n".join(sorted(new.splitlines()))
        assert old == new, f"{statement.name}: engines disagree\n18.16:\n{old}\n26:\n{new}"


def test_no_module_sends_clickhouse_sql_of_its_own() -> None:
    """Only named statements go out: ClickHouse DDL in Python source would dodge this check."""
    root = Path(__file__).resolve().parents[2]
    offenders = [
        f"{path.relative_to(root)}: {marker}"
        for package in ("pipeline", "flags", "monitoring", "stack")
        for path in root.glob(f"{package}/**/*.py")
        # The client itself names the output formats it asks for (JSONCompact, CSVWithNames).
        if path.relative_to(root) != Path("pipeline/systems/clickhouse.py")
        for marker in ("MergeTree", "DROP PARTITION", "FORMAT CSV", "FORMAT TabSeparated")
        if marker in path.read_text(encoding="utf-8")
    ]
    assert not offenders, offenders
    assert (root / "pipeline" / "systems" / "clickhouse.py").is_file(), "the scan looks elsewhere"
