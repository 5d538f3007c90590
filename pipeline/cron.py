"""The runner: executes the project's ``crontab`` in the compose stack's ``runner`` service.

Why not Debian's cron: it drops the container's environment (where the secrets are) and has no
per-entry time zone, and the sales flow runs on Moscow time. This reads the same crontab format
(five fields and a command; ``KEY=value`` lines set the environment of the entries below them;
``CRON_TZ=Zone`` sets their time zone) and runs each due entry with ``/bin/sh -c`` from the
project root, one process per entry; an entry still running when it is due again is skipped
(and logged), never stacked.

Bounded time: a run still going after its deadline (``PIPELINE_CRON_DEADLINE_S``, default three
hours; a ``PIPELINE_CRON_DEADLINE_S=...`` line in the crontab sets it for the entries below) is
killed with its whole process group (TERM, then KILL after a grace period), logged as
``cron.killed`` and finishes with a non-zero exit code (124, as ``timeout`` does): a lock wait or
a half-open connection can never block an entry forever.

    python -m pipeline.cron                       # run forever
    python -m pipeline.cron --list                # the entries and their next run times
    python -m pipeline.cron --run 17              # run the entry of crontab line 17 now, once
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from croniter import croniter

from config.settings import PROJECT_ROOT, load_settings

DEFAULT_CRONTAB = PROJECT_ROOT / "crontab"
# The exit code of a run killed at its deadline (as coreutils' timeout), and how long a run gets
# between TERM and KILL.
KILLED = 124
GRACE_S = 10.0


class CrontabError(ValueError):
    """A crontab line the runner cannot use; the message names the file and line."""


@dataclass(frozen=True)
class Entry:
    schedule: str
    command: str
    tz: str
    env: tuple[tuple[str, str], ...]
    line: int

    def deadline_s(self) -> float:
        """Seconds a run of this entry may take (``PIPELINE_CRON_DEADLINE_S`` as the entry's
        environment sets it, else the setting)."""
        return load_settings({**os.environ, **dict(self.env)}).flows.cron_deadline_s

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first run strictly after ``moment`` (an aware datetime), in UTC."""
        local = moment.astimezone(ZoneInfo(self.tz))
        nxt: dt.datetime = croniter(self.schedule, local).get_next(dt.datetime)
        return nxt.astimezone(dt.UTC)


def parse_crontab(text: str, source: str = "crontab") -> list[Entry]:
    entries: list[Entry] = []
    env: dict[str, str] = {}
    tz = "UTC"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head = line.split(None, 1)[0]
        if "=" in head and not head[0].isdigit() and head[0] not in "*@":
            key, _, value = line.partition("=")
            key, value = key.strip(), value.strip().strip("'\"")
            if not key.isidentifier():
                raise CrontabError(f"{source}:{number}: bad variable name {key!r}")
            if key == "CRON_TZ":
                try:
                    ZoneInfo(value)
                except Exception as exc:
                    raise CrontabError(f"{source}:{number}: unknown time zone {value!r}") from exc
                tz = value
            else:
                env[key] = value
            continue
        fields = line.split(None, 5)
        if len(fields) < 6:
            raise CrontabError(f"{source}:{number}: expected 5 schedule fields and a command")
        schedule, command = " ".join(fields[:5]), fields[5]
        if not croniter.is_valid(schedule):
            raise CrontabError(f"{source}:{number}: invalid schedule {schedule!r}")
        entries.append(Entry(schedule, command, tz, tuple(sorted(env.items())), number))
    return entries


logger = logging.getLogger("pipeline.cron")
# What each event says to a person; the fields go with the record (labels.* in the JSON file).
MESSAGES = {
    "cron.ready": "{entries} crontab entries, waiting for the first one due",
    "cron.started": "line {line} started (pid {pid}): {command}",
    "cron.finished": "line {line} (pid {pid}) ended, exit code {exit_code}",
    "cron.skipped": "line {line} skipped: {reason}",
    "cron.killed": "line {line} (pid {pid}) killed: {reason}",
}


def log(event: str, **fields: object) -> None:
    """A record like every process's (monitoring.logs): a line on the console, JSON in
    var/logs/cron.log. A skipped, killed or failed run is a warning."""
    failed = event == "cron.finished" and fields.get("exit_code") != 0
    level = logging.WARNING if failed or event in ("cron.skipped", "cron.killed") else logging.INFO
    logger.log(
        level, MESSAGES.get(event, event).format(**fields), extra={"event_action": event, **fields}
    )


@dataclass
class Run:
    """A run of an entry: its process (the leader of its own process group), when it started
    and how long it may take."""

    proc: subprocess.Popen[bytes]
    started: float
    deadline_s: float
    killed: bool = False
    term_sent: float | None = None


@dataclass
class Runner:
    entries: list[Entry]
    cwd: Path = PROJECT_ROOT
    running: dict[int, Run] = field(default_factory=dict)
    grace_s: float = GRACE_S

    def reap(self) -> dict[int, int]:
        """Finished runs: logged and forgotten; returns their exit codes by line (a run killed
        at its deadline exits ``KILLED``)."""
        self.enforce_deadlines()
        finished = {}
        for line, run in list(self.running.items()):
            code = run.proc.poll()
            if code is not None:
                del self.running[line]
                code = KILLED if run.killed else code
                finished[line] = code
                log("cron.finished", line=line, pid=run.proc.pid, exit_code=code)
        return finished

    def enforce_deadlines(self) -> None:
        """Kill the runs past their deadline, with their whole process group (luigi's workers
        included): TERM first, KILL after the grace period."""
        now = time.monotonic()
        for line, run in self.running.items():
            if run.proc.poll() is not None:
                continue
            if not run.killed and now - run.started > run.deadline_s:
                run.killed, run.term_sent = True, now
                log(
                    "cron.killed",
                    line=line,
                    pid=run.proc.pid,
                    deadline_s=run.deadline_s,
                    reason=f"still running after its deadline of {run.deadline_s:g} s",
                )
                self._signal(run, signal.SIGTERM)
            elif run.term_sent is not None and now - run.term_sent > self.grace_s:
                self._signal(run, signal.SIGKILL)

    @staticmethod
    def _signal(run: Run, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.proc.pid, sig)

    def launch(self, entry: Entry) -> subprocess.Popen[bytes] | None:
        self.reap()
        if entry.line in self.running:
            log("cron.skipped", line=entry.line, reason="previous run still running")
            return None
        env = {**os.environ, **dict(entry.env)}
        proc = subprocess.Popen(  # noqa: S603
            ["/bin/sh", "-c", entry.command], cwd=self.cwd, env=env, start_new_session=True
        )
        self.running[entry.line] = Run(proc, time.monotonic(), entry.deadline_s())
        log(
            "cron.started",
            line=entry.line,
            pid=proc.pid,
            command=entry.command,
            deadline_s=self.running[entry.line].deadline_s,
        )
        return proc

    def run_once(self, entry: Entry, poll_s: float = 0.2) -> int:
        """Run ``entry`` now and wait for it (killed at its deadline); its exit code."""
        if self.launch(entry) is None:
            return 1
        while True:
            finished = self.reap()
            if entry.line in finished:
                return finished[entry.line]
            time.sleep(poll_s)

    def due(self, since: dt.datetime, until: dt.datetime) -> list[Entry]:
        """Entries with a run time in (since, until]."""
        return [e for e in self.entries if e.next_after(since) <= until]

    def forever(self) -> None:
        last = dt.datetime.now(dt.UTC)
        log("cron.ready", entries=len(self.entries))
        while True:
            time.sleep(max(0.5, 1.0 - dt.datetime.now(dt.UTC).microsecond / 1e6))
            now = dt.datetime.now(dt.UTC)
            for entry in self.due(last, now):
                self.launch(entry)
            self.reap()
            last = now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crontab", type=Path, default=DEFAULT_CRONTAB)
    parser.add_argument("--list", action="store_true", help="print entries and next runs, exit")
    parser.add_argument(
        "--run", type=int, metavar="LINE", help="run the entry of this crontab line once, now"
    )
    args = parser.parse_args(argv)
    try:
        entries = parse_crontab(args.crontab.read_text(encoding="utf-8"), str(args.crontab))
    except (OSError, CrontabError) as exc:
        print(f"cron: {exc}", file=sys.stderr)
        return 2
    if args.list:
        now = dt.datetime.now(dt.UTC)
        for e in entries:
            print(f"{e.next_after(now):%Y-%m-%d %H:%M} UTC  [{e.schedule} {e.tz}]  {e.command}")
        return 0
    from monitoring.logs import setup_logging

    setup_logging("cron")
    if args.run is not None:
        chosen = [e for e in entries if e.line == args.run]
        if not chosen:
            print(f"cron: no entry on line {args.run} of {args.crontab}", file=sys.stderr)
            return 2
        return Runner(entries).run_once(chosen[0])
    Runner(entries).forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
