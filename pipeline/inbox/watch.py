"""The watcher: a file landing in the inbox starts its chain within seconds.

python -m pipeline.inbox watch
"""

from __future__ import annotations

import logging
import time

import luigi

from config.settings import load_settings
from pipeline.inbox.tasks import ProcessInbox

log = logging.getLogger(__name__)


def watch(
    settle_s: float | None = None,
    sweep_every_s: float | None = None,
    local_scheduler: bool = False,
    stop_after_s: float | None = None,
) -> None:
    """Start the chain of every file that lands in the inbox within seconds.

    File-system events (watchdog: inotify on Linux) mark the inbox dirty; once no event has come
    for ``settle_s`` the watcher runs the same ``ProcessInbox`` the cron sweep runs, with files
    unchanged for ``settle_s`` counted as complete. It also sweeps every ``sweep_every_s`` in
    case an event was missed. Both triggers share one path, so a file is processed once.
    Defaults: the ``watch_*`` settings."""
    import threading

    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    settings = load_settings()
    settle_s = settings.flows.watch_settle_s if settle_s is None else settle_s
    if sweep_every_s is None:
        sweep_every_s = settings.flows.watch_sweep_every_s
    paths = settings.paths
    paths.ensure()
    dirty = threading.Event()
    last_event = [time.monotonic()]

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if not event.is_directory:
                last_event[0] = time.monotonic()
                dirty.set()

    observer = Observer()
    observer.schedule(Handler(), str(paths.inbox), recursive=False)
    observer.start()
    log.info("watching %s", paths.inbox)
    began = last_sweep = time.monotonic()
    dirty.set()  # whatever is already there
    try:
        while stop_after_s is None or time.monotonic() - began < stop_after_s:
            dirty.wait(timeout=0.5)
            now = time.monotonic()
            settled = dirty.is_set() and now - last_event[0] >= settle_s
            if settled or now - last_sweep >= sweep_every_s:
                dirty.clear()
                last_sweep = now
                luigi.build(
                    [ProcessInbox(min_age_s=settle_s)],
                    local_scheduler=local_scheduler,
                    log_level="WARNING",
                )
    finally:
        observer.stop()
        observer.join(10)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m pipeline.inbox", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("watch", help="start each landing file's chain within seconds")
    flows = load_settings().flows
    w.add_argument(
        "--settle-seconds",
        type=float,
        default=flows.watch_settle_s,
        help="quiet seconds after the last event before a sweep (PIPELINE_WATCH_SETTLE_S)",
    )
    w.add_argument(
        "--sweep-every",
        type=float,
        default=flows.watch_sweep_every_s,
        help="sweep at least this often, in seconds (PIPELINE_WATCH_SWEEP_EVERY_S)",
    )
    w.add_argument("--local-scheduler", action="store_true")
    w.add_argument("--stop-after", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from monitoring.logs import setup_logging

    setup_logging("inbox-watch")
    watch(args.settle_seconds, args.sweep_every, args.local_scheduler, args.stop_after)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
