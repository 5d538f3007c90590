"""The front door: the README stands on its own (no path outside the repository, no development
jargon, links that resolve), its cheat-sheet covers every scheduled flow and links the flow's own
README, its copy of the crontab is the crontab, and the task-graph command it shows works."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cron import DEFAULT_CRONTAB, parse_crontab

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_names_nothing_outside_the_repository_and_no_jargon() -> None:
    assert not re.search(r"\.\./|(?<!var)/work/|\bshared/|seeds/", README)
    assert not re.search(r"(?i)\blanded\b|#pending|not landed|\bWIP\b", README)
    crontab = DEFAULT_CRONTAB.read_text(encoding="utf-8")
    assert "#pending" not in crontab and "landed" not in crontab


def test_every_relative_link_resolves() -> None:
    for target in re.findall(r"\]\(([^)#:]+)\)", README):
        assert (ROOT / target).exists(), target


def test_the_cheat_sheet_covers_every_scheduled_flow_with_its_readme() -> None:
    sheet = README[README.index("## Cheat-sheet") : README.index("## Layout")]
    for entry in parse_crontab(DEFAULT_CRONTAB.read_text(encoding="utf-8")):
        family = shlex.split(entry.command)[3]
        flow = family.split(".")[0]
        assert f"[{flow}](pipeline/{flow}/README.md)" in sheet, flow
        assert f"`{family}`" in sheet, family  # what cron runs
        assert f"--module pipeline.{flow} " in sheet, flow  # how to run it by hand
    assert "--force" in sheet and "--resend" in sheet and "RangeDaily" in sheet
    assert "luigi-deps-tree --module" in sheet


def test_the_readmes_crontab_is_the_crontab() -> None:
    block = README[README.index("## The crontab") :].split("```")[1].strip().splitlines()
    live = [
        line
        for line in DEFAULT_CRONTAB.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert block == live


@pytest.mark.integration
def test_the_task_graph_command_prints_the_graph(stack: None) -> None:
    line = next(x for x in README.splitlines() if x.startswith(".venv/bin/luigi-deps-tree"))
    args = shlex.split(line.split("#")[0])
    result = subprocess.run(
        [str(Path(sys.executable).parent / "luigi-deps-tree"), *args[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "SalesWeekly" in result.stdout and "SalesAggregates" in result.stdout
