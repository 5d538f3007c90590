"""Every command the READMEs show resolves: a ``luigi --module`` line names a module, a task and
parameters that exist (parsed as luigi parses them, the task built, a range's ``--of`` found), and
a ``python -m`` line names a module that exists. ``luigi ... --help`` alone would not do: it exits
0 for a task that does not exist."""

import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
from luigi.cmdline_parser import CmdlineParser

# Luigi's RangeDaily warns about its own unset param_name.
pytestmark = pytest.mark.filterwarnings('ignore:Parameter "param_name":UserWarning')

ROOT = Path(__file__).resolve().parent.parent
READMES = [ROOT / "README.md", *sorted((ROOT / "pipeline").glob("*/README.md"))]


def commands(pattern: str) -> list[tuple[str, str]]:
    found = []
    for readme in READMES:
        for line in readme.read_text(encoding="utf-8").splitlines():
            for match in re.finditer(pattern, line):
                command = match.group(0).strip().rstrip("\\").strip()
                if "<" not in command and "..." not in command:
                    found.append((str(readme.relative_to(ROOT)), command))
    return sorted(set(found))


LUIGI = commands(r"luigi --module [^`#|\n]+")
PYTHON_M = commands(r"python -m [\w.]+")


def test_the_readmes_show_every_flow() -> None:
    flows = {c.split()[2] for _, c in LUIGI}
    assert flows >= {
        f"pipeline.{f}"
        for f in ("inbox", "sales", "activity", "telemetry", "reports", "alerts", "retention")
    }
    assert len(READMES) == 8


@pytest.mark.parametrize(("readme", "command"), LUIGI)
def test_a_luigi_command_resolves(readme: str, command: str) -> None:
    args = [a for a in shlex.split(command)[1:] if a != "--help"]
    assert args[0] == "--module"
    importlib.import_module(args[1])
    with CmdlineParser.global_instance(args[2:]) as parser:
        task = parser.get_task_obj()
        if "--of" in args:  # RangeDaily and friends: the task they range over
            assert task.of_cls.get_task_family() == args[args.index("--of") + 1]


@pytest.mark.parametrize(("readme", "command"), PYTHON_M)
def test_a_python_module_command_exists(readme: str, command: str) -> None:
    module = command.split()[2]
    assert importlib.util.find_spec(module) is not None, f"{readme}: no module {module}"
