import datetime as dt

import pytest

from pipeline.core.sql import SqlError, all_statements, literal, load, render, render_text


def test_values_are_quoted_as_clickhouse_literals() -> None:
    assert literal("it's \\ here") == "'it\\'s \\\\ here'"
    assert literal(dt.date(2024, 1, 2)) == "'2024-01-02'"
    assert literal(dt.datetime(2024, 1, 2, 3, 4, 5)) == "'2024-01-02 03:04:05'"
    assert literal(None) == "NULL"
    assert literal(True) == "1"
    assert literal([1, "a"]) == "(1, 'a')"
    with pytest.raises(SqlError):
        literal(float("nan"))


def test_identifiers_must_be_plain_names() -> None:
    text = "SELECT * FROM {db}.t WHERE x = %(x)s"
    assert render_text("t", text, {"db": "sales", "x": "a'b"}) == (
        "SELECT * FROM sales.t WHERE x = 'a\\'b'"
    )
    with pytest.raises(SqlError, match="not a plain identifier"):
        render_text("t", text, {"db": "sales; DROP TABLE x", "x": 1})
    with pytest.raises(SqlError, match=r"value %\(x\)s has no value"):
        render_text("t", text, {"db": "sales"})


def test_braces_inside_values_are_not_identifier_slots() -> None:
    assert render_text("t", "SELECT %(v)s", {"v": "{db}"}) == "SELECT '{db}'"


def test_unknown_statement_names_the_path() -> None:
    with pytest.raises(SqlError, match="no clickhouse statement 'nope/missing'"):
        load("nope/missing")
    with pytest.raises(SqlError, match="bad statement name"):
        load("../etc/passwd")


def test_every_statement_renders_with_its_check_parameters() -> None:
    databases = {d: d for d in ("simulator", "test", "sales", "bionicpro_reports", "ops")}
    statements = all_statements()
    assert statements, "the registry is empty"
    for statement in statements:
        for dependency in statement.after:
            load(dependency)
        render(statement.name, {**databases, **statement.check_params})
