"""Warm task processes (``pipeline.core.runners``), through real ``luigi`` commands as cron runs
them: tasks share up to ``--workers`` processes instead of a fork each, and everything Luigi
watches still holds — a task whose process is SIGKILLed fails and the others go on, a task over
its ``worker_timeout`` is terminated, runners are replaced after their tasks, and none outlives
a killed ``luigi`` command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).parent / "luigi")


def luigi_cmd(*args: str) -> list[str]:
    return [LUIGI, "--module", "tests.fixtures.runner_tasks", *args, "--local-scheduler"]


def run(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        luigi_cmd(*args),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        check=False,
    )


def pids(folder: Path, suffix: str = ".pid") -> dict[str, int]:
    return {p.name: int(p.read_text()) for p in folder.iterdir() if p.name.endswith(suffix)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_tasks_share_as_many_processes_as_workers(tmp_path: Path) -> None:
    result = run("Many", "--count", "12", "--folder", str(tmp_path), "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    ran = pids(tmp_path)
    assert len(ran) == 12
    # Two warm processes ran the twelve tasks (Luigi's own way: twelve forks).
    assert 1 <= len(set(ran.values())) <= 2


def test_one_setting_gives_a_process_per_task(tmp_path: Path) -> None:
    result = run(
        "Many", "--count", "6", "--folder", str(tmp_path), "--workers", "2",
        PIPELINE_TASKS_PER_PROCESS="1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(set(pids(tmp_path).values())) == 6


def test_a_process_is_replaced_after_its_tasks(tmp_path: Path) -> None:
    result = run(
        "Many", "--count", "9", "--folder", str(tmp_path), "--workers", "1",
        PIPELINE_TASKS_PER_PROCESS="3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    ran = list(pids(tmp_path).values())
    assert len(ran) == 9
    # 9 tasks and the wrapper, 3 per process: 4 processes, none ran more than 3.
    assert len(set(ran)) >= 3
    assert max(ran.count(pid) for pid in set(ran)) <= 3
    # A runner that ends after its last task is never taken for a process that died.
    assert "died unexpectedly" not in result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_task_whose_process_is_killed_fails_and_the_others_go_on(
    tmp_path: Path, workers: str
) -> None:
    # With one worker the same runner ran tasks 0-2 just before: their results are on the
    # worker's queue before the runner takes the next task, so its death loses none of them.
    result = run(
        "Many", "--count", "8", "--die", "3", "--folder", str(tmp_path), "--workers", workers,
        timeout=90,
    )  # fmt: skip
    assert result.returncode == 30, result.stderr[-3000:]  # luigi.cfg [retcode] task_failed
    done = pids(tmp_path)
    assert sorted(done) == sorted(f"{n}.pid" for n in range(8) if n != 3)
    assert "died unexpectedly" in result.stderr
    killed = pids(tmp_path, ".started")["3.started"]
    assert not alive(killed)
    # Its place was taken by a fresh process: at most the two runners and one replacement.
    assert len(set(done.values()) | {killed}) <= 3


def test_dynamic_dependencies_run_in_the_warm_processes(tmp_path: Path) -> None:
    result = run("Yields", "--count", "4", "--folder", str(tmp_path), "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    ran = pids(tmp_path)
    assert sorted(ran) == sorted([*(f"{n}.pid" for n in range(4)), "yields.pid"])
    assert len(set(ran.values())) <= 2


def test_a_task_that_cannot_be_pickled_runs_in_a_fork_of_its_own_beside_them(
    tmp_path: Path,
) -> None:
    result = run("Mixed", "--count", "9", "--folder", str(tmp_path), "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    ran = pids(tmp_path)
    forked = {v for k, v in ran.items() if k.startswith("unpicklable-")}
    warm = {v for k, v in ran.items() if not k.startswith("unpicklable-")}
    assert len(ran) == 9 and len(forked) == 3  # a process each
    assert len(warm) <= 2 and not forked & warm


def test_a_task_over_its_timeout_is_terminated_with_its_process(tmp_path: Path) -> None:
    began = time.monotonic()
    result = run("Hangs", "--folder", str(tmp_path), "--workers", "2", timeout=60)
    assert result.returncode == 30, result.stderr[-3000:]
    assert time.monotonic() - began < 45  # not the task's 60 s sleep
    assert "timed out" in result.stderr
    hung = int((tmp_path / "hangs.started").read_text())
    deadline = time.monotonic() + 10
    while alive(hung) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(hung)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_no_process_outlives_a_killed_luigi_command(tmp_path: Path, workers: str) -> None:
    command = subprocess.Popen(
        luigi_cmd("Many", "--count", "40", "--pause-s", "0.2", "--folder", str(tmp_path),
                  "--workers", workers),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while len(pids(tmp_path)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(pids(tmp_path)) >= 3, "the command ran no task"
        os.kill(command.pid, signal.SIGKILL)
        command.wait(10)
    finally:
        if command.poll() is None:
            command.kill()
    runners = set(pids(tmp_path, ".started").values())
    # The kernel kills a runner when its worker dies (a task must not run on without the
    # worker that enforces its timeout); an idle one would also find its pipe closed.
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in runners) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in runners if alive(pid)]
    ran = len(pids(tmp_path))
    assert ran < 40  # killed midway
    time.sleep(1)
    assert len(pids(tmp_path)) == ran  # nothing went on without it
