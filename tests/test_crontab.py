"""The crontab (every flow's schedule from the seeds) and the runner that executes it."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import luigi
import pytest

from pipeline.cron import DEFAULT_CRONTAB, CrontabError, Runner, parse_crontab

ROOT = Path(__file__).resolve().parent.parent


def all_entries():
    return parse_crontab(DEFAULT_CRONTAB.read_text())


def by_task() -> dict[str, object]:
    return {shlex.split(e.command)[3].rpartition(".")[2]: e for e in all_entries()}


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_every_entry_is_a_luigi_command_naming_a_task_that_exists() -> None:
    assert len(all_entries()) >= 7  # every flow of the seeds
    for entry in all_entries():
        argv = shlex.split(entry.command)
        assert argv[:2] == ["luigi", "--module"] and argv[2].startswith("pipeline."), entry
    for entry in all_entries():
        argv = shlex.split(entry.command)
        importlib.import_module(argv[2])
        task = luigi.task_register.Register.get_task_cls(argv[3])
        assert issubclass(task, luigi.Task)
        # The flow's namespace is the module's flow: `luigi --module pipeline.sales sales.X`.
        assert argv[3].split(".")[0] == argv[2].split(".")[1], entry


def test_every_entry_resolves_as_a_luigi_command_line() -> None:
    """Exactly what cron runs, with --help: the module imports and the task and its options are
    known to Luigi's own command line."""
    luigi_bin = Path(sys.executable).parent / "luigi"
    for entry in all_entries():
        argv = shlex.split(entry.command)
        result = subprocess.run(
            [str(luigi_bin), *argv[1:], "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, f"{entry.command}: {result.stderr[-1500:]}"


def test_schedules_follow_the_seeds() -> None:
    tasks = by_task()
    monday = utc(2024, 6, 3, 12, 0)  # a Monday
    # Sales: Tuesday 12:45 Moscow = 09:45 UTC.
    assert tasks["SalesCatchUp"].next_after(monday) == utc(2024, 6, 4, 9, 45)
    # Reports at 11:00 Moscow.
    assert tasks["ReportsCatchUp"].next_after(monday) == utc(2024, 6, 4, 8, 0)
    # Telemetry mart at 02:00.
    assert tasks["TelemetryCatchUp"].next_after(monday) == utc(2024, 6, 3, 23, 0)
    # Alerts every 15 minutes.
    first = tasks["AlertCheck"].next_after(monday)
    assert (first, tasks["AlertCheck"].next_after(first)) == (
        utc(2024, 6, 3, 12, 15),
        utc(2024, 6, 3, 12, 30),
    )
    # The inbox sweep runs every few minutes; activity daily.
    sweep = tasks["ProcessInbox"].next_after(monday)
    assert sweep - monday <= dt.timedelta(minutes=5)
    assert tasks["ActivityCatchUp"].next_after(monday) - monday < dt.timedelta(days=1)


def test_bad_lines_name_the_line() -> None:
    with pytest.raises(CrontabError, match="crontab:2: invalid schedule"):
        parse_crontab("# ok\n61 * * * * echo hi\n")
    with pytest.raises(CrontabError, match="crontab:1: unknown time zone"):
        parse_crontab("CRON_TZ=Mars/Olympus\n")
    with pytest.raises(CrontabError, match="crontab:1: expected 5 schedule fields"):
        parse_crontab("* * * * \n")


def test_runner_passes_environment_and_never_stacks_a_running_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_FROM_ENV", "kept")
    entries = parse_crontab(
        f"GREETING=hello\n* * * * * echo $GREETING $SECRET_FROM_ENV >> {tmp_path}/out; sleep 1\n"
    )
    runner = Runner(entries, cwd=tmp_path)
    first = runner.launch(entries[0])
    assert first is not None
    assert runner.launch(entries[0]) is None  # still running: skipped
    first.wait(10)
    time.sleep(0.1)
    second = runner.launch(entries[0])
    assert second is not None
    second.wait(10)
    assert (tmp_path / "out").read_text() == "hello kept\nhello kept\n"


def test_due_respects_the_entry_time_zone() -> None:
    entries = parse_crontab("CRON_TZ=Europe/Moscow\n45 12 * * 2 echo sales\n")
    runner = Runner(entries)
    assert runner.due(utc(2024, 6, 4, 9, 44), utc(2024, 6, 4, 9, 45)) == entries
    assert runner.due(utc(2024, 6, 4, 9, 45), utc(2024, 6, 4, 12, 45)) == []


def alive(pid: int) -> bool:
    """Running (a killed child whose parent is gone may linger as a zombie until reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_the_runner_kills_a_run_past_its_deadline_with_its_children(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run that would block forever (a lock wait, a half-open connection) is killed at its
    deadline, children included, logged, and finishes non-zero; the entries after a deadline
    line of their own get theirs."""
    entries = parse_crontab(
        "PIPELINE_CRON_DEADLINE_S=1\n"
        f"* * * * * sleep 60 & echo $! > {tmp_path}/child; wait\n"
        "PIPELINE_CRON_DEADLINE_S=90\n"
        "* * * * * true\n"
    )
    assert [e.deadline_s() for e in entries] == [1.0, 90.0]
    runner = Runner(entries, cwd=tmp_path, grace_s=2.0)
    began = time.monotonic()
    caplog.set_level("INFO", logger="pipeline.cron")
    assert runner.run_once(entries[0], poll_s=0.1) == 124
    assert time.monotonic() - began < 10
    child = int((tmp_path / "child").read_text())
    time.sleep(0.2)
    assert not alive(child)  # the sleep the shell started is gone too
    logged = caplog.records  # records like every process's (JSON in var/logs/cron.log)
    killed = [r for r in logged if getattr(r, "event_action", "") == "cron.killed"]
    assert len(killed) == 1 and killed[0].deadline_s == 1.0  # type: ignore[attr-defined]
    finished = [r for r in logged if getattr(r, "event_action", "") == "cron.finished"]
    assert finished[-1].exit_code == 124  # type: ignore[attr-defined]
    assert runner.run_once(entries[1], poll_s=0.1) == 0


def test_the_runner_command_runs_one_entry_and_exits_with_its_code(tmp_path: Path) -> None:
    crontab = tmp_path / "crontab"
    crontab.write_text("PIPELINE_CRON_DEADLINE_S=1\n* * * * * sleep 30\n* * * * * exit 3\n")
    run = [sys.executable, "-m", "pipeline.cron", "--crontab", str(crontab), "--run"]
    env = {**os.environ, "PIPELINE_RUNTIME_DIR": str(tmp_path)}
    began = time.monotonic()
    killed = subprocess.run([*run, "2"], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert killed.returncode == 124 and time.monotonic() - began < 30
    assert b"killed: still running after its deadline of 1 s" in killed.stdout
    records = [
        json.loads(line) for line in (tmp_path / "logs" / "cron.log").read_text().splitlines()
    ]
    assert [r["event.action"] for r in records] == ["cron.started", "cron.killed", "cron.finished"]
    failed = subprocess.run([*run, "3"], cwd=ROOT, env=env, capture_output=True, timeout=60)
    assert failed.returncode == 3
