"""The durable flag store: JSON files, one per input file, written atomically under a lock.

Layout: ``<flags>/<first two hex digits of the id>/<file id>.json`` (sharded so a folder never
holds 100,000 entries), locks in ``<flags>/.locks``. The JSON files are the record; Redis is a
mirror kept in step on every write (``mirror.py``). If Redis is down the write still lands in
JSON, the pipeline goes on, and a ``.mirror-stale`` file says so until ``reindex`` rebuilds it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import fastjsonschema
import jsonschema

from flags.document import FILE_ID, FlagError
from pipeline.core.faults import crash_point
from pipeline.core.files import atomic_write

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).with_name("schema.json")
STALE_MARKER = ".mirror-stale"
STORE_ID = ".store-id"


class FlagNotFound(FlagError):
    pass


class CorruptFlag(FlagError):
    """A flag file that is not a valid flag; the message names the file and what is wrong."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"corrupt flag file {path}: {reason}")
        self.path = path
        self.reason = reason


@cache
def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.validators.validator_for(schema).check_schema(schema)
    return schema


@cache
def _fast_check() -> Callable[[Any], Any]:
    # fastjsonschema compiles the schema to Python: ~10x faster than jsonschema, which matters
    # because every read and every write of a flag is validated.
    return fastjsonschema.compile(_schema())


# Compiled now, once: a process that compiled it on first use paid ~20-40 ms (Luigi's task
# processes, forked from the worker, inherit the compiled function).
_fast_check()


def validate(flag: dict[str, Any]) -> None:
    """Raise ``FlagError`` naming the first schema violation (path and rule)."""
    try:
        _fast_check()(flag)
        return
    except fastjsonschema.JsonSchemaException:
        pass
    # Invalid: let jsonschema explain it (the best match of its errors).
    validator = jsonschema.validators.validator_for(_schema())(_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(flag))
    where, message = "(document)", "rejected by the schema"
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or where
        message = error.message
    raise FlagError(f"flag {flag.get('file_id', '?')} breaks the schema at {where}: {message}")


# Flags hold file names, sizes, checksums and stage counts, never secrets or row contents: readable
# by operators' tools running as other users.
FLAG_MODE = 0o644


def atomic_write_json(path: Path, document: dict[str, Any], durable: bool = True) -> None:
    """The flag as compact JSON, written atomically (``pipeline.core.files``)."""
    # Compact: the C encoder (indent= falls back to the pure-Python one, 5x slower). People read
    # flags with `flags show`, which pretty-prints.
    data = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    atomic_write(path, data.encode("utf-8"), mode=FLAG_MODE, durable=durable)


class Mirror(Protocol):
    """What the store needs of a mirror (``mirror.RedisMirror`` is the real one)."""

    def begin(self, file_id: str) -> None: ...

    def put(self, flag: dict[str, Any]) -> bool: ...


@dataclass
class FlagStore:
    root: Path
    mirror: Mirror | None = None
    durable: bool = True

    # -- paths --------------------------------------------------------------------------------
    def path(self, file_id: str) -> Path:
        if not FILE_ID.match(file_id):
            raise FlagError(f"not a flag id: {file_id!r}")
        return self.root / file_id[:2] / f"{file_id}.json"

    @contextlib.contextmanager
    def lock(self, file_id: str) -> Iterator[None]:
        """An exclusive lock on one flag, across threads and processes (flock)."""
        locks = self.root / ".locks"
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / f"{file_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # -- reading ------------------------------------------------------------------------------
    def read_path(self, path: Path) -> dict[str, Any]:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise FlagNotFound(f"no flag {path.stem} (looked for {path})") from None
        try:
            flag = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptFlag(path, f"not JSON ({exc}); {len(raw)} bytes") from None
        if not isinstance(flag, dict):
            raise CorruptFlag(path, "not a JSON object")
        try:
            validate(flag)
        except FlagError as exc:
            raise CorruptFlag(path, str(exc)) from None
        if flag["file_id"] != path.stem:
            raise CorruptFlag(path, f"holds flag {flag['file_id']}, not {path.stem}")
        return flag

    def get(self, file_id: str) -> dict[str, Any]:
        return self.read_path(self.path(file_id))

    def exists(self, file_id: str) -> bool:
        return self.path(file_id).is_file()

    def count(self) -> int:
        """How many flag files there are (a directory scan: no file is opened)."""
        total = 0
        if not self.root.is_dir():
            return 0
        with os.scandir(self.root) as shards:
            for shard in shards:
                if len(shard.name) == 2 and not shard.name.startswith(".") and shard.is_dir():
                    with os.scandir(shard.path) as entries:
                        total += sum(
                            1
                            for e in entries
                            if e.name.endswith(".json") and not e.name.startswith(".")
                        )
        return total

    @property
    def store_id(self) -> str:
        """This store's identity (made once): an index built from it carries the same id."""
        path = self.root / STORE_ID
        try:
            return path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            pass
        with self.lock(".store-id"):
            if not path.exists():
                atomic_write(path, uuid.uuid4().hex, mode=FLAG_MODE, durable=self.durable)
        return path.read_text(encoding="utf-8").strip()

    def paths(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for shard in sorted(self.root.iterdir()):
            if shard.is_dir() and len(shard.name) == 2 and not shard.name.startswith("."):
                yield from sorted(p for p in shard.glob("*.json") if not p.name.startswith("."))

    def scan(
        self, on_error: Callable[[CorruptFlag], None] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every readable flag. A corrupt file is reported (``on_error``) and skipped, so one bad
        file never hides the others."""
        for path in self.paths():
            try:
                yield self.read_path(path)
            except CorruptFlag as exc:
                if on_error is None:
                    log.error("%s", exc, extra={"event.action": "flag.corrupt"})
                else:
                    on_error(exc)

    # -- writing ------------------------------------------------------------------------------
    def create(self, flag: dict[str, Any]) -> dict[str, Any]:
        """Store a new flag; an existing flag with the same id is an error, never overwritten."""
        validate(flag)
        file_id = flag["file_id"]
        with self.lock(file_id):
            if self.exists(file_id):
                raise FlagError(f"flag {file_id} already exists")
            self._begin(file_id)
            atomic_write_json(self.path(file_id), flag, self.durable)
            crash_point("flags.after_json")
        self._mirror(flag)
        return flag

    def update(
        self, file_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        """Read, change and write one flag under its lock: concurrent writers never lose an update.

        ``change`` gets the current flag and returns the new one (``document`` operations)."""
        with self.lock(file_id):
            current = self.get(file_id)
            new = change(current)
            if new["file_id"] != file_id:
                raise FlagError(f"a change may not alter the id ({file_id} -> {new['file_id']})")
            if new["revision"] != current["revision"] + 1:
                raise FlagError(f"flag {file_id}: a change must bump the revision by one")
            validate(new)
            self._begin(file_id)
            atomic_write_json(self.path(file_id), new, self.durable)
            crash_point("flags.after_json")
        self._mirror(new)
        return new

    # -- the mirror ---------------------------------------------------------------------------
    @property
    def stale_marker(self) -> Path:
        return self.root / STALE_MARKER

    def mirror_stale(self) -> str | None:
        """Why the mirror is stale, or None if it is believed in step."""
        try:
            return self.stale_marker.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def mark_stale(self, reason: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        try:
            with open(self.stale_marker, "x", encoding="utf-8") as handle:
                handle.write(f"{stamp} {reason}\n")
        except FileExistsError:
            pass  # the first reason is the interesting one
        except OSError as exc:  # pragma: no cover - disk trouble is reported by the JSON write
            if exc.errno != errno.EEXIST:
                raise

    def clear_stale(self) -> None:
        self.stale_marker.unlink(missing_ok=True)

    def _begin(self, file_id: str) -> None:
        """Tell the index a write of ``file_id`` begins: a crash before the put leaves a mark
        that readers repair from the JSON file (``Ledger.in_step``)."""
        if self.mirror is None:
            return
        try:
            self.mirror.begin(file_id)
        except Exception as exc:  # Redis down: the index is marked stale and bypassed
            self.mark_stale(f"{type(exc).__name__}: {exc}")

    def _mirror(self, flag: dict[str, Any]) -> None:
        if self.mirror is None:
            return
        try:
            self.mirror.put(flag)
        except Exception as exc:  # Redis down, slow or refusing: JSON has it, go on.
            self.mark_stale(f"{type(exc).__name__}: {exc}")
            log.warning(
                "flag %s written to JSON; Redis mirror not updated (%s): run `flags reindex`",
                flag["file_id"],
                type(exc).__name__,
                extra={"event.action": "flag.mirror_failed"},
            )
