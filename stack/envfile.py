"""``make .env``: the local ``.env`` from ``.env.example``, its empty secrets generated.

Every uncommented ``NAME=`` line of the example whose name says it is a secret (``*_PASSWORD``,
``*_TOKEN``, ``*_SECRET``, ``*_KEY``) gets a random value (32 bytes, URL-safe): good for this
machine's local stack and for ``docker compose`` here, never committed. The file is written
owner-only and never replaces an existing ``.env`` (production sets its own secrets).

    python3 -m stack.envfile              # writes .env beside .env.example, if there is none
    python3 -m stack.envfile --add-missing   # an older .env: append the secrets it lacks

Only the standard library: ``make`` runs it before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from pathlib import Path

from config.settings import PROJECT_ROOT, SECRET_NAME

EMPTY_ASSIGNMENT = re.compile(r"^([A-Z][A-Z0-9_]*)=\s*$")


def render(example: str) -> str:
    """The example with each empty secret assignment given a generated value."""
    lines = []
    for line in example.splitlines():
        match = EMPTY_ASSIGNMENT.match(line)
        if match and SECRET_NAME.search(match.group(1)):
            line = f"{match.group(1)}={secrets.token_urlsafe(32)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def write(target: Path, example: Path) -> bool:
    """Write ``target`` from ``example`` unless it exists; True if written."""
    text = render(example.read_text(encoding="utf-8"))
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return True


def add_missing(target: Path, example: Path) -> list[str]:
    """Append to an existing ``target`` a generated value for each secret of ``example`` it does
    not assign; its own lines are kept as they are. The names added."""
    have = set(re.findall(r"(?m)^(?:export\s+)?([A-Z][A-Z0-9_]*)=", target.read_text("utf-8")))
    added = []
    for line in render(example.read_text(encoding="utf-8")).splitlines():
        name = line.partition("=")[0]
        if EMPTY_ASSIGNMENT.match(f"{name}=") and SECRET_NAME.search(name) and name not in have:
            added.append(line)
    target.chmod(0o600)  # it holds secrets
    if added:
        with target.open("a", encoding="utf-8") as out:
            out.write("\n# Added by `python3 -m stack.envfile --add-missing`.\n")
            out.write("\n".join(added) + "\n")
    return [line.partition("=")[0] for line in added]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m stack.envfile", description=__doc__)
    parser.add_argument("--example", type=Path, default=PROJECT_ROOT / ".env.example")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / ".env")
    parser.add_argument(
        "--add-missing", action="store_true", help="append the secrets an existing .env lacks"
    )
    args = parser.parse_args(argv)
    if args.add_missing and args.out.exists():
        added = add_missing(args.out, args.example)
        print(f"{args.out}: added {', '.join(added) or 'nothing (every secret is there)'}")
        return 0
    if write(args.out, args.example):
        print(f"wrote {args.out} with generated local secrets (see {args.example.name})")
    else:
        print(f"{args.out} exists: left as it is")
    return 0


if __name__ == "__main__":
    sys.exit(main())
