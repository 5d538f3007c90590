"""``flags`` (or ``python -m flags``): inspect and repair the file status flags.

    flags list [--status S] [--dataset D] [--since T] [--until T] [--limit N] [--json]
    flags show ID            the whole flag as JSON
    flags history ID         every transition and event, oldest first
    flags retry ID           a failed file back to its last good stage (next run redoes the rest)
    flags reset ID --to STAGE --reason TEXT
    flags counts             files per dataset and status
    flags reindex            rebuild the Redis mirror from the JSON files
    flags check              compare the mirror with the JSON files; exit 1 on drift

``list`` reads Redis when the mirror is in step (fast) and the JSON files otherwise (it says so).
Exit codes: 0 fine, 1 drift found (check), 2 bad input or unknown flag.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from flags import document as doc
from flags.ledger import Ledger
from flags.store import FlagError


def _time(text: str) -> dt.datetime:
    """ISO time, or a relative one: 15m, 6h, 2d (that long ago)."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        return dt.datetime.now(dt.UTC) - dt.timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (ISO 8601, or 15m / 6h / 2d)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _row(flag: dict[str, Any]) -> list[str]:
    error = flag["last_error"]
    return [
        flag["file_id"],
        flag["dataset"],
        flag["status"],
        str(flag["attempts"]),
        flag["updated_at"][:19].replace("T", " "),
        flag["source"]["name"][:48],
        f"{error['type']} at {error['stage']}" if error else "",
    ]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def cmd_list(ledger: Ledger, args: argparse.Namespace) -> int:
    flags, source = ledger.list(
        status=args.status,
        dataset=args.dataset,
        since=args.since,
        until=args.until,
        limit=args.limit,
    )
    if args.json:
        print(json.dumps(flags, ensure_ascii=False, indent=1))
    else:
        header = ["FILE ID", "DATASET", "STATUS", "TRIES", "UPDATED (UTC)", "NAME", "LAST ERROR"]
        print(_table(header, [_row(f) for f in flags]))
        note = "" if source == "redis" else " (Redis mirror stale or down: read the JSON files)"
        print(f"{len(flags)} flag(s){note}", file=sys.stderr)
    return 0


def cmd_show(ledger: Ledger, args: argparse.Namespace) -> int:
    print(json.dumps(ledger.get(args.file_id), ensure_ascii=False, indent=1))
    return 0


def cmd_history(ledger: Ledger, args: argparse.Namespace) -> int:
    flag = ledger.get(args.file_id)
    rows = [
        [
            h["at"][:23].replace("T", " "),
            h["event"],
            h["from"] or "-",
            h["to"] or "-",
            h.get("note", ""),
        ]
        for h in flag["history"]
    ]
    print(_table(["AT (UTC)", "EVENT", "FROM", "TO", "NOTE"], rows))
    return 0


def cmd_retry(ledger: Ledger, args: argparse.Namespace) -> int:
    flag = ledger.retry(args.file_id, note=args.reason)
    print(f"{flag['file_id']}: back to {flag['status']} (attempt {flag['attempts']})")
    return 0


def cmd_reset(ledger: Ledger, args: argparse.Namespace) -> int:
    flag = ledger.reset(args.file_id, args.to, note=args.reason)
    print(f"{flag['file_id']}: reset to {flag['status']} (attempt {flag['attempts']})")
    return 0


def cmd_counts(ledger: Ledger, args: argparse.Namespace) -> int:
    counts = ledger.counts()
    rows = [[d, s, str(n)] for (d, s), n in sorted(counts.items())]
    print(_table(["DATASET", "STATUS", "FILES"], rows))
    return 0


def cmd_reindex(ledger: Ledger, args: argparse.Namespace) -> int:
    result = ledger.reindex()
    print(f"mirrored {result['mirrored']} flag(s) to Redis in {result['seconds']} s")
    for path in result["corrupt"]:
        print(f"skipped corrupt flag file: {path}", file=sys.stderr)
    return 0


def cmd_check(ledger: Ledger, args: argparse.Namespace) -> int:
    drift = ledger.check()
    print(f"JSON flags: {drift.json_flags}   Redis flags: {drift.redis_flags}")
    problems = [
        ("mirror marked stale", [drift.stale.strip()] if drift.stale else []),
        ("missing in Redis", drift.missing_in_redis),
        ("in Redis but not in JSON", drift.extra_in_redis),
        ("behind in Redis", drift.behind_in_redis),
        ("corrupt flag files", drift.corrupt),
    ]
    for label, items in problems:
        if items:
            shown = ", ".join(items[:10]) + (
                f" ... (+{len(items) - 10})" if len(items) > 10 else ""
            )
            print(f"{label}: {len(items)}: {shown}")
    if drift.clean:
        print("in step")
        return 0
    print("drift found: run `flags reindex` (corrupt files need a person)", file=sys.stderr)
    return 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="flags", description=__doc__.split("\n\n")[0].strip("`"))
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="flags by status, dataset, time")
    ls.add_argument("--status", choices=doc.STATUSES)
    ls.add_argument("--dataset")
    ls.add_argument("--since", type=_time, help="updated at or after (ISO, or 15m/6h/2d ago)")
    ls.add_argument("--until", type=_time)
    ls.add_argument("--limit", type=int)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(run=cmd_list)
    for name, fn, text in (
        ("show", cmd_show, "the whole flag"),
        ("history", cmd_history, "its story"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("file_id")
        s.set_defaults(run=fn)
    r = sub.add_parser("retry", help="a failed file back to its last good stage")
    r.add_argument("file_id")
    r.add_argument("--reason", default=None)
    r.set_defaults(run=cmd_retry)
    z = sub.add_parser("reset", help="move a file back to an earlier stage")
    z.add_argument("file_id")
    z.add_argument("--to", required=True, choices=doc.STAGES)
    z.add_argument("--reason", required=True)
    z.set_defaults(run=cmd_reset)
    for name, fn, text in (
        ("counts", cmd_counts, "files per dataset and status"),
        ("reindex", cmd_reindex, "rebuild the Redis mirror from JSON"),
        ("check", cmd_check, "compare the mirror with JSON"),
    ):
        sub.add_parser(name, help=text).set_defaults(run=fn)
    return p


def main(argv: list[str] | None = None, ledger: Ledger | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.run(ledger or Ledger.from_settings(), args))
    except FlagError as exc:
        print(f"flags {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # Redis refusing a reindex, a disk error: one line, not a trace
        import redis

        if isinstance(exc, redis.RedisError):
            print(f"flags {args.command}: Redis: {exc}", file=sys.stderr)
            return 2
        raise
