"""The runner: executes the project's ``crontab`` in the compose stack's ``runner`` service.

Why not Debian's cron: it drops the container's environment (where the secrets are) and has no
per-entry time zone, and the sales flow runs on Moscow time. This reads the same crontab format
(five fields and a command; ``KEY=value`` lines set the environment of the entries below them;
``CRON_TZ=Zone`` sets their time zone) and runs each due entry with ``/bin/sh -c`` from the
project root, one process per entry; an entry still running when it is due again is skipped
(and logged), never stacked.

    python -m pipeline.cron                       # run forever
    python -m pipeline.cron --list                # the entries and their next run times
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from croniter import croniter

from config.settings import PROJECT_ROOT

DEFAULT_CRONTAB = PROJECT_ROOT / "crontab"


class CrontabError(ValueError):
    """A crontab line the runner cannot use; the message names the file and line."""


@dataclass(frozen=True)
class Entry:
    schedule: str
    command: str
    tz: str
    env: tuple[tuple[str, str], ...]
    line: int

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


def log(event: str, **fields: object) -> None:
    record = {"@timestamp": dt.datetime.now(dt.UTC).isoformat(), "event.action": event, **fields}
    print(json.dumps(record, default=str), flush=True)


@dataclass
class Runner:
    entries: list[Entry]
    cwd: Path = PROJECT_ROOT
    running: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def reap(self) -> None:
        for line, proc in list(self.running.items()):
            code = proc.poll()
            if code is not None:
                del self.running[line]
                log("cron.finished", line=line, pid=proc.pid, exit_code=code)

    def launch(self, entry: Entry) -> subprocess.Popen[bytes] | None:
        self.reap()
        if entry.line in self.running:
            log("cron.skipped", line=entry.line, reason="previous run still running")
            return None
        import os

        env = {**os.environ, **dict(entry.env)}
        proc = subprocess.Popen(["/bin/sh", "-c", entry.command], cwd=self.cwd, env=env)  # noqa: S603
        self.running[entry.line] = proc
        log("cron.started", line=entry.line, pid=proc.pid, command=entry.command)
        return proc

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
    Runner(entries).forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
