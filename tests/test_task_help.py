"""Names that explain themselves: every task of every flow is ``<flow>.<CamelCase>`` and every
parameter says what it is (``luigi --module pipeline.<flow> <flow>.<Task> --help``)."""

import importlib
import re
from pathlib import Path

import luigi
import pytest
from luigi.task_register import Register

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ("inbox", "sales", "activity", "telemetry", "reports", "alerts", "retention")


def flow_tasks() -> dict[str, type[luigi.Task]]:
    for flow in FLOWS:
        importlib.import_module(f"pipeline.{flow}")
    return {
        name: cls
        for name, cls in Register._get_reg().items()
        if isinstance(cls, type)
        and cls.__module__.startswith(tuple(f"pipeline.{f}" for f in FLOWS))
    }


def test_every_flow_task_is_camel_case_in_its_flows_namespace() -> None:
    tasks = flow_tasks()
    assert {name.split(".", 1)[0] for name in tasks} == set(FLOWS)
    for name, cls in tasks.items():
        flow, _, task = name.partition(".")
        assert cls.__module__.split(".")[1] == flow, name
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", task), f"{name} is not CamelCase"


@pytest.mark.parametrize("name", sorted(flow_tasks()))
def test_every_parameter_has_a_description(name: str) -> None:
    cls = flow_tasks()[name]
    missing = [param for param, p in cls.get_params() if not (p.description or "").strip()]
    assert missing == [], f"{name}: parameters without description=: {missing}"


def test_code_names_what_a_thing_is_not_the_requirement_document_it_came_from() -> None:
    cited = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "pipeline").rglob("*"))
        if path.suffix in {".py", ".sql"}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"(?i)\bseeds? \d{3}", line)
    ]
    assert cited == []
