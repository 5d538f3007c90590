"""The console is for people: a flow run with `luigi` prints one line per task start and finish
(flow, task, key parameters, rows, duration) and Luigi's summary, never a JSON line, never a
warning; ``PIPELINE_LOG_FORMAT=json`` prints the JSON lines instead, for containers."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
LUIGI = str(Path(sys.executable).parent / "luigi")
TASK_LINE = re.compile(r"^\d\d:\d\d:\d\d (start|done) +(activity\.\w+)( date=2024-05-21)?")


def run(args: list[str], runtime: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LUIGI, *args],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "LUIGI_CONFIG_PATH": str(ROOT / "luigi.cfg"),  # as cron runs it
            "PIPELINE_RUNTIME_DIR": str(runtime),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.integration
def test_a_flow_prints_a_line_per_task_start_and_finish_and_no_json_or_warning(
    stack: None, runtime: Path
) -> None:
    from demo.simulator import SimSpec, write_day
    from flags.ledger import Ledger

    day = dt.date(2024, 5, 21)
    write_day(day, SimSpec(seed=5, start=day, base_users=300, feed_actions_per_day=3_000))
    Ledger.from_settings().counts()  # the flag index of this fresh runtime, as on any machine
    result = run(
        ["--module", "pipeline.activity", "activity.ActivityDaily", "--date", str(day)]
        + ["--workers", "2", "--local-scheduler"],
        runtime,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""  # no Python warning (UnconsumedParameterWarning and the like)
    lines = result.stdout.splitlines()
    assert not [line for line in lines if line.lstrip().startswith("{")]
    assert not [line for line in lines if re.search(r"(?i)\bwarn(ing)?\b", line)]
    summary = lines.index("===== Luigi Execution Summary =====")
    task_lines = [line for line in lines[:summary] if line]
    assert all(TASK_LINE.match(line) for line in task_lines), task_lines
    families = {TASK_LINE.match(line).group(2) for line in task_lines}  # type: ignore[union-attr]
    assert families >= {"activity.ExtractFeed", "activity.LoadActivity", "activity.ActivityDaily"}
    for family in families:
        started = [x for x in task_lines if re.search(rf" start +{family}\b", x)]
        done = [x for x in task_lines if re.search(rf" done +{family}\b", x)]
        assert len(started) == len(done) >= 1, family
    load = next(x for x in task_lines if " done   activity.LoadActivity" in x)
    assert re.search(r"  [\d,]+ rows  \d+\.\ds$", load), load  # rows and duration
    assert "This progress looks :)" in result.stdout
    # The whole story is in the JSON file, task lines included.
    records = [json.loads(x) for x in (runtime / "logs" / "luigi.log").read_text().splitlines()]
    finished = [r for r in records if r.get("event.action") == "task.finish"]
    assert {r["labels.task_family"] for r in finished} == families
    assert all(r["labels.flow"] == "activity" and r["event.duration"] > 0 for r in finished)


def test_json_on_the_console_for_containers(tmp_path: Path) -> None:
    marker = tmp_path / "done"
    result = run(
        ["--module", "tests.fixtures.cli_tasks", "Succeeds", "--marker", str(marker)]
        + ["--local-scheduler"],
        tmp_path,
        PIPELINE_LOG_FORMAT="json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert records and all(
        {"@timestamp", "log.level", "message", "event.id"} <= set(r) for r in records
    )
    assert load_settings().monitoring.log_format == "text"  # the default, for people


def test_the_cron_runner_logs_like_every_other_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from pipeline.cron import Runner, parse_crontab

    entries = parse_crontab("* * * * * exit 3\n")
    runner = Runner(entries, cwd=tmp_path)
    with caplog.at_level(logging.INFO, logger="pipeline.cron"):
        assert runner.run_once(entries[0]) == 3
    events = [(r.levelname, getattr(r, "event_action", "")) for r in caplog.records]
    assert events == [("INFO", "cron.started"), ("WARNING", "cron.finished")]
    assert caplog.records[-1].getMessage().endswith("ended, exit code 3")
