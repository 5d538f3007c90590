"""The luigid UI as a person sees it: a headless Chromium (Debian's, installed by the stack) opens
the scheduler's task list after a flow's command ran through luigid, and the page shows the task
under its flow. The screenshot is kept beside the test's files."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from config.settings import load_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def chromium(*args: str) -> subprocess.CompletedProcess[bytes]:
    binary = shutil.which("chromium")
    assert binary, "chromium is missing: `make stack-up` installs it (Debian chromium)"
    return subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        + ["--hide-scrollbars", "--window-size=1280,900", "--virtual-time-budget=8000", *args],
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_the_luigid_ui_shows_a_flows_run(stack: None, runtime: Path, tmp_path: Path) -> None:
    mark = f"_ui_{uuid.uuid4().hex[:8]}_"  # this run's, among every run luigid remembers
    result = subprocess.run(
        [str(Path(sys.executable).parent / "luigi"), "--module", "pipeline.inbox"]
        + ["inbox.ProcessInbox", "--name-contains", mark],
        cwd=ROOT,
        env={**os.environ, "LUIGI_CONFIG_PATH": str(ROOT / "luigi.cfg")},  # through luigid
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The task list, searched for this run (the UI keeps its state in the URL's fragment).
    ui = load_settings().monitoring.luigid_url
    page = f"{ui}/static/visualiser/index.html#search__search={mark}"
    dom = chromium("--dump-dom", page)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout.decode()
    assert "Luigi Task Status" in html
    assert "inbox.ProcessInbox" in html and mark in html  # the run, with its parameters
    assert ">inbox<" in html.replace(" ", "")  # the flow's group in the sidebar
    shot = tmp_path / "luigid.png"
    taken = chromium(f"--screenshot={shot}", page)
    assert taken.returncode == 0 and shot.is_file(), taken.stderr[-2000:]
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1280, 900)
