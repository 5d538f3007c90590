"""`luigi` runs as cron starts them: from the project root, with the project's luigi.cfg.

A failed run must exit non-zero (Luigi exits 0 for everything but an unhandled exception unless
``[retcode]`` says otherwise), a retried task must succeed within the same run (keep_alive), and
a run waiting on missing input must end by itself.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LUIGI = str(Path(sys.executable).parent / "luigi")


def luigi_run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LUIGI, "--module", "tests.fixtures.cli_tasks", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_project_luigi_cfg_makes_failures_visible_to_cron() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "luigi.cfg")
    assert cfg.getboolean("worker", "keep_alive")
    assert int(cfg["retcode"]["task_failed"]) > 0
    assert int(cfg["retcode"]["missing_data"]) > 0
    assert int(cfg["retcode"]["scheduling_error"]) > 0
    # The worker must outlive the gap between retries, or retries never happen.
    idle = cfg["worker"]["max_keep_alive_idle_duration"]
    assert idle.endswith("minutes") and int(idle.split()[0]) * 60 > int(
        cfg["scheduler"]["retry_delay"]
    )


def test_a_failing_task_exits_non_zero() -> None:
    result = luigi_run("AlwaysFails", "--local-scheduler")
    assert result.returncode == 30, result.stderr[-2000:]
    assert "this task always fails" in result.stderr


def test_a_successful_run_exits_zero(tmp_path: Path) -> None:
    result = luigi_run("Succeeds", "--marker", str(tmp_path / "ok"), "--local-scheduler")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "ok").read_text() == "ok\n"


def test_retries_act_within_one_run(tmp_path: Path) -> None:
    marker = str(tmp_path / "flaky")
    result = luigi_run("FailsOnceThenSucceeds", "--marker", marker, "--local-scheduler")
    assert result.returncode == 0, result.stderr[-3000:]
    assert Path(marker + ".attempts").read_text() == "2"


def test_missing_input_ends_the_run_with_the_missing_data_code() -> None:
    result = luigi_run("NeedsMissingInput", "--local-scheduler", timeout=60)
    assert result.returncode == 20, result.stderr[-2000:]


@pytest.mark.integration
def test_runs_appear_in_the_central_scheduler(stack: None, tmp_path: Path) -> None:
    marker = str(tmp_path / "central")
    result = luigi_run("Succeeds", "--marker", marker)  # [core] scheduler_url: luigid
    assert result.returncode == 0, result.stderr[-2000:]
    from config.settings import load_settings

    url = load_settings().monitoring.luigid_url
    query = urllib.parse.quote(
        json.dumps({"status": "DONE", "upstream_status": "", "search": marker})
    )
    with urllib.request.urlopen(f"{url}/api/task_list?data={query}", timeout=10) as response:
        tasks = json.load(response)["response"]
    assert [t["params"]["marker"] for t in tasks.values() if t["name"] == "Succeeds"] == [marker]
