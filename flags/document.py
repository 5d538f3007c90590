"""The flag document: one JSON document per input file, and the rules for changing it.

Pure functions on plain dicts (the JSON form is the data): no I/O here. ``store.py`` reads and
writes them; every change goes through one of the operations below, which check the transition,
stamp the time, and append to the history, so the history is the whole story of the file.

A flag looks like this (abridged)::

    {
      "schema_version": 1,
      "file_id": "3f5a0c...e1",            # from the content hash, not the name
      "dataset": "sales",
      "source": {"path": "/.../inbox/sales_2024_w01_north.csv", "name": "sales_2024_w01_north.csv",
                 "size": 81234, "sha256": "3f5a0c..."},
      "status": "loaded",
      "stages": {"received": {"at": "...", "rows_in": null, ...},
                 "validated": {"at": "...", "rows_in": 19230, "rows_out": 19228,
                               "rows_rejected": 2, "duration_s": 0.41}, ...},
      "attempts": 1,
      "last_error": null,
      "history": [{"at": "...", "event": "transition", "from": null, "to": "received",
                   "host": "etl-1", "pid": 4242}, ...],  # who made each change
      "revision": 4, "created_at": "...", "updated_at": "..."
    }
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
from copy import deepcopy
from typing import Any

SCHEMA_VERSION = 1

RECEIVED = "received"
VALIDATED = "validated"
TRANSFORMED = "transformed"
LOADED = "loaded"
ARCHIVED = "archived"
FAILED = "failed"
QUARANTINED = "quarantined"
DUPLICATE = "duplicate"

STATUSES = (RECEIVED, VALIDATED, TRANSFORMED, LOADED, ARCHIVED, FAILED, QUARANTINED, DUPLICATE)
# The stages of a file's journey, in order: a status is reached once its stage entry exists.
STAGES = (RECEIVED, VALIDATED, TRANSFORMED, LOADED, ARCHIVED)

TRANSITIONS: dict[str, frozenset[str]] = {
    RECEIVED: frozenset({VALIDATED, QUARANTINED, DUPLICATE, FAILED}),
    VALIDATED: frozenset({TRANSFORMED, QUARANTINED, FAILED}),
    TRANSFORMED: frozenset({LOADED, FAILED}),
    LOADED: frozenset({ARCHIVED, FAILED}),
    # Final, or left only by an explicit operation (retry, reset) that the history records.
    ARCHIVED: frozenset(),
    DUPLICATE: frozenset(),
    QUARANTINED: frozenset(),
    FAILED: frozenset(),
}
# Nothing further will happen to these files unless someone acts: later stages count as done.
SETTLED = frozenset({ARCHIVED, DUPLICATE, QUARANTINED})
# Statuses a file should not stay in for long (monitoring counts them as stuck after a while).
IN_FLIGHT = frozenset({RECEIVED, VALIDATED, TRANSFORMED, LOADED})

FILE_ID = re.compile(r"^[0-9a-f]{24}(-[0-9]+)?$")
MAX_MESSAGE = 2000


class FlagError(ValueError):
    """A flag operation that the rules forbid; the message names the file and the rule."""


class IllegalTransition(FlagError):
    pass


def now_iso(moment: dt.datetime | None = None) -> str:
    return (moment or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="microseconds")


def file_id_for(sha256: str, arrival: int = 0) -> str:
    """A file's stable id, from its content hash; a later arrival of the same bytes: a suffix."""
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise FlagError(f"not a sha256 hex digest: {sha256!r}")
    return sha256[:24] if arrival == 0 else f"{sha256[:24]}-{arrival}"


def new_flag(
    *,
    dataset: str,
    path: str,
    name: str,
    size: int,
    sha256: str,
    arrival: int = 0,
    at: dt.datetime | None = None,
    note: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A flag for a file just registered: status ``received``; ``details`` are facts recorded
    with it (e.g. the file's inode, so later stages check they opened the file registered)."""
    stamp = now_iso(at)
    flag: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "file_id": file_id_for(sha256, arrival),
        "dataset": dataset,
        "source": {"path": path, "name": name, "size": size, "sha256": sha256},
        "status": RECEIVED,
        "stages": {RECEIVED: _stage_entry(stamp)},
        "attempts": 1,
        "last_error": None,
        "duplicate_of": None,
        "details": {_detail_key(k): v for k, v in (details or {}).items()},
        "history": [_event(stamp, "transition", None, RECEIVED, note)],
        "revision": 1,
        "created_at": stamp,
        "updated_at": stamp,
    }
    return flag


def _stage_entry(
    stamp: str,
    rows_in: int | None = None,
    rows_out: int | None = None,
    rows_rejected: int | None = None,
    duration_s: float | None = None,
) -> dict[str, Any]:
    return {
        "at": stamp,
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_rejected": rows_rejected,
        "duration_s": duration_s,
    }


def _event(
    stamp: str, event: str, old: str | None, new: str | None, note: str | None = None
) -> dict[str, Any]:
    """A history entry, naming the host and process that made it (read now: a forked worker
    has a pid of its own)."""
    entry: dict[str, Any] = {
        "at": stamp,
        "event": event,
        "from": old,
        "to": new,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    if note:
        entry["note"] = note[:MAX_MESSAGE]
    return entry


def _touch(flag: dict[str, Any], stamp: str) -> None:
    flag["updated_at"] = stamp
    flag["revision"] = int(flag["revision"]) + 1


def _detail_key(key: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        raise FlagError(f"detail key must be snake_case, not {key!r}")
    return key


def advance(
    flag: dict[str, Any],
    status: str,
    *,
    rows_in: int | None = None,
    rows_out: int | None = None,
    rows_rejected: int | None = None,
    duration_s: float | None = None,
    note: str | None = None,
    details: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """A copy of ``flag`` moved to ``status`` (a stage reached, or quarantined/duplicate);
    ``details`` are facts recorded with the move (archive path, reject file)."""
    old = flag["status"]
    if status not in TRANSITIONS.get(old, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(old, ()))) or "none (use retry or reset)"
        raise IllegalTransition(
            f"flag {flag['file_id']}: {old} -> {status} is not allowed; from {old}: {allowed}"
        )
    if status == FAILED:
        raise FlagError("use fail() to record a failure: it needs the stage and the error")
    stamp = now_iso(at)
    new = deepcopy(flag)
    new["status"] = status
    new["stages"][status] = _stage_entry(stamp, rows_in, rows_out, rows_rejected, duration_s)
    new["history"].append(_event(stamp, "transition", old, status, note))
    for key, value in (details or {}).items():
        new["details"][_detail_key(key)] = value
    if status != QUARANTINED:
        new["last_error"] = None
    _touch(new, stamp)
    return new


def advance_many(flag: dict[str, Any], steps: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A copy of ``flag`` moved through several stages in one write (``steps``: each status with
    ``advance``'s keywords), for stages whose effects were all made durable before it: every
    transition is checked and recorded as ``advance`` would, one after the other, in one
    revision."""
    if not steps:
        raise FlagError("advance_many needs at least one step")
    new = flag
    for status, info in steps:
        new = advance(new, status, **info)
    new["revision"] = int(flag["revision"]) + 1
    return new


def fail(
    flag: dict[str, Any],
    *,
    stage: str,
    error_type: str,
    message: str,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """A copy of ``flag`` marked failed at ``stage`` (the stage it was trying to reach)."""
    old = flag["status"]
    if FAILED not in TRANSITIONS.get(old, frozenset()):
        raise IllegalTransition(f"flag {flag['file_id']}: cannot fail from {old}")
    stamp = now_iso(at)
    new = deepcopy(flag)
    new["status"] = FAILED
    new["last_error"] = {
        "stage": stage,
        "type": error_type,
        "message": message[:MAX_MESSAGE],
        "at": stamp,
    }
    new["history"].append(_event(stamp, "transition", old, FAILED, f"{error_type} at {stage}"))
    _touch(new, stamp)
    return new


def last_good_stage(flag: dict[str, Any]) -> str:
    """The furthest stage the file reached (its status before any failure)."""
    reached = [s for s in STAGES if s in flag["stages"]]
    return reached[-1] if reached else RECEIVED


def retry(
    flag: dict[str, Any], *, note: str | None = None, at: dt.datetime | None = None
) -> dict[str, Any]:
    """A failed file goes back to its last good stage; the next run redoes what follows."""
    if flag["status"] != FAILED:
        raise FlagError(
            f"flag {flag['file_id']}: only a failed file can be retried (it is {flag['status']})"
        )
    return _move_back(flag, last_good_stage(flag), "retry", note, at)


def reset(
    flag: dict[str, Any], to: str, *, note: str, at: dt.datetime | None = None
) -> dict[str, Any]:
    """An operator's explicit move back to an earlier stage (e.g. re-validate a quarantined file
    after its contract was fixed). Later stages are dropped; the history keeps them."""
    if to not in STAGES:
        raise FlagError(f"reset target must be one of {', '.join(STAGES)}, not {to!r}")
    if to not in flag["stages"]:
        raise FlagError(f"flag {flag['file_id']}: cannot reset to {to}: it never reached it")
    if not note:
        raise FlagError("a reset needs a reason (note)")
    return _move_back(flag, to, "reset", note, at)


def _move_back(
    flag: dict[str, Any], to: str, event: str, note: str | None, at: dt.datetime | None
) -> dict[str, Any]:
    stamp = now_iso(at)
    new = deepcopy(flag)
    old = new["status"]
    keep = STAGES[: STAGES.index(to) + 1]
    new["stages"] = {k: v for k, v in new["stages"].items() if k in keep}
    new["status"] = to
    new["attempts"] = int(new["attempts"]) + 1
    new["history"].append(_event(stamp, event, old, to, note))
    _touch(new, stamp)
    return new


def annotate(
    flag: dict[str, Any],
    key: str,
    value: Any,
    *,
    note: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Record a fact about the file without changing its status (archive path, notification)."""
    _detail_key(key)
    stamp = now_iso(at)
    new = deepcopy(flag)
    new["details"][key] = value
    new["history"].append(_event(stamp, f"detail:{key}", new["status"], new["status"], note))
    _touch(new, stamp)
    return new


def mark_duplicate(
    flag: dict[str, Any], original_id: str, at: dt.datetime | None = None
) -> dict[str, Any]:
    new = advance(flag, DUPLICATE, note=f"same content as {original_id}", at=at)
    new["duplicate_of"] = original_id
    return new


def reached(flag: dict[str, Any], stage: str) -> bool:
    """Has this file reached ``stage``? Settled files (archived, duplicate, quarantined) count as
    done for every stage: there is nothing left to do for them unless someone resets them."""
    if stage not in STAGES:
        raise FlagError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    return stage in flag["stages"] or flag["status"] in SETTLED
