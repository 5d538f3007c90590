"""The flag ledger: what tasks and the ``flags`` command use — the JSON store and its Redis mirror
together, with queries that read Redis when it is in step and the JSON files when it is not.

The JSON files are the record; Redis is an index that must prove it is in step before a query
trusts it (``in_step``):

- built: the index carries the id of the store it was completely built from (``flags:built``); a
  flushed or emptied Redis has none and is rebuilt from the JSON files;
- no write half-done: a process killed between a flag's JSON write and its Redis put leaves the
  id in ``flags:inflight``; those flags are re-mirrored from their JSON files;
- nothing missed while Redis was down: a failed put leaves the store's stale marker, and the
  index is rebuilt once Redis answers again;
- the same size: as many flags in the index as JSON files on disk, else it is rebuilt (the
  count, a scan of every flag folder, stands for a few seconds while the index size is the same).

When Redis does not answer, queries read the JSON files. Nothing ever trusts an empty answer
from an index that cannot show it is complete.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from config.settings import Settings, load_settings
from flags import document as doc
from flags.mirror import RedisMirror
from flags.store import CorruptFlag, FlagNotFound, FlagStore
from pipeline.core.files import file_lock
from pipeline.systems.redis import client

log = logging.getLogger(__name__)

# How long a check that found the index as large as the JSON files stands (``_same_size``).
SIZE_CHECK_TTL_S = 10.0


@dataclass
class Drift:
    """What ``check`` found between the JSON files (the record) and the Redis mirror."""

    json_flags: int = 0
    redis_flags: int = 0
    missing_in_redis: list[str] = field(default_factory=list)
    extra_in_redis: list[str] = field(default_factory=list)
    behind_in_redis: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    stale: str | None = None

    @property
    def clean(self) -> bool:
        return not (
            self.missing_in_redis
            or self.extra_in_redis
            or self.behind_in_redis
            or self.corrupt
            or self.stale
        )


@dataclass
class Ledger:
    store: FlagStore
    mirror: RedisMirror | None

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, use_redis: bool = True) -> Ledger:
        s = settings or load_settings()
        mirror = RedisMirror(client(s.redis)) if use_redis else None
        return cls(FlagStore(s.paths.flags, mirror), mirror)

    @classmethod
    def at(cls, root: Path, client: redis.Redis | None) -> Ledger:
        mirror = RedisMirror(client) if client is not None else None
        return cls(FlagStore(root, mirror), mirror)

    # -- writes (each a document operation under the flag's lock) ------------------------------
    def register(self, **kwargs: Any) -> dict[str, Any]:
        return self.store.create(doc.new_flag(**kwargs))

    def advance(self, file_id: str, status: str, **info: Any) -> dict[str, Any]:
        return self.store.update(file_id, lambda f: doc.advance(f, status, **info))

    def advance_many(self, file_id: str, steps: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        """Several stages in one durable write (their effects are all durable already)."""
        return self.store.update(file_id, lambda f: doc.advance_many(f, steps))

    def fail(self, file_id: str, *, stage: str, error: BaseException | str) -> dict[str, Any]:
        error_type = type(error).__name__ if isinstance(error, BaseException) else "Error"
        message = str(error) or error_type
        return self.store.update(
            file_id, lambda f: doc.fail(f, stage=stage, error_type=error_type, message=message)
        )

    def retry(self, file_id: str, note: str | None = None) -> dict[str, Any]:
        return self.store.update(file_id, lambda f: doc.retry(f, note=note))

    def reset(self, file_id: str, to: str, note: str) -> dict[str, Any]:
        return self.store.update(file_id, lambda f: doc.reset(f, to, note=note))

    def annotate(
        self, file_id: str, key: str, value: Any, note: str | None = None
    ) -> dict[str, Any]:
        return self.store.update(file_id, lambda f: doc.annotate(f, key, value, note=note))

    def mark_duplicate(self, file_id: str, original_id: str) -> dict[str, Any]:
        return self.store.update(file_id, lambda f: doc.mark_duplicate(f, original_id))

    def get(self, file_id: str) -> dict[str, Any]:
        return self.store.get(file_id)

    # -- queries ------------------------------------------------------------------------------
    def mirror_usable(self) -> bool:
        """Kept for callers that only ask: the same as ``in_step``."""
        return self.in_step()

    def in_step(self) -> bool:
        """True when the Redis index may answer queries: it is brought in step first when it
        can be (repair in-flight writes, rebuild when lost, stale or short); False when Redis is
        down or another process is rebuilding it (read the JSON files then)."""
        if self.mirror is None:
            return False
        try:
            if self.store.mirror_stale() is not None or (
                self.mirror.built_from() != self.store.store_id
            ):
                return self._rebuild_if_free()
            self._repair_inflight()
            if not self._same_size():
                self._repair_inflight()  # a write that began while we counted
                if not self._same_size():
                    log.warning(
                        "flag index holds %d flags, the JSON files %d: rebuilding",
                        self.mirror.size(),
                        self.store.count(),
                        extra={"event.action": "flag.index_short"},
                    )
                    return self._rebuild_if_free()
            return True
        except redis.RedisError:
            return False

    def _same_size(self) -> bool:
        """As many flags in the index as JSON files. Counting the files scans every flag folder
        (O(flags)), and queries ask on every metrics push: a count that agreed at this very
        index size less than ``SIZE_CHECK_TTL_S`` ago stands. A flag written the normal way
        changes the index size too (so the files are counted again); one written behind the
        index's back is found once the mark expires."""
        assert self.mirror is not None
        size, unindexed, sized = self.mirror.size_state()
        if sized is not None and sized == size + unindexed:
            return True
        same = size + unindexed == self.store.count()
        if same:
            self.mirror.mark_sized(size + unindexed, SIZE_CHECK_TTL_S)
        return same

    def _repair_inflight(self) -> None:
        """Re-mirror, from the JSON files, every flag whose write was interrupted."""
        assert self.mirror is not None
        for file_id in self.mirror.inflight():
            with self.store.lock(file_id):  # a live writer finishes (and clears the mark) first
                try:
                    self.mirror.put(self.store.get(file_id))
                except FlagNotFound:
                    self.mirror.settle(file_id)  # the JSON write never happened

    def _rebuild_lock(self) -> contextlib.AbstractContextManager[bool]:
        """One rebuild at a time; others read the JSON files meanwhile (non-blocking)."""
        return file_lock(self.store.root / ".locks" / "reindex.lock", blocking=False)

    def _rebuild_if_free(self) -> bool:
        with self._rebuild_lock() as mine:
            if not mine:
                return False  # someone else is rebuilding: the JSON files answer meanwhile
            result = self._reindex_unlocked()
            # A fresh index of an empty store is routine; one that had fallen behind is news.
            log.log(
                logging.WARNING if result["mirrored"] else logging.INFO,
                "flag index rebuilt from the JSON files: %d flags in %.2f s",
                result["mirrored"],
                result["seconds"],
                extra={"event.action": "flag.index_rebuilt"},
            )
            return self.mirror is not None and self.mirror.built_from() == self.store.store_id

    def list(
        self,
        *,
        status: str | None = None,
        dataset: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """Flags matching the filters, newest first, and where they were read from
        (``redis``, or ``json`` when the mirror is stale or down)."""
        if status is not None and status not in doc.STATUSES:
            raise doc.FlagError(f"unknown status {status!r}; statuses: {', '.join(doc.STATUSES)}")
        if self.in_step():
            assert self.mirror is not None
            ids = self.mirror.ids(status=status, dataset=dataset, since=since, until=until)
            return self.mirror.get_many(ids[:limit] if limit else ids), "redis"
        chosen = [
            f
            for f in self.store.scan()
            if (status is None or f["status"] == status)
            and (dataset is None or f["dataset"] == dataset)
            and (since is None or dt.datetime.fromisoformat(f["updated_at"]) >= since)
            and (until is None or dt.datetime.fromisoformat(f["updated_at"]) <= until)
        ]
        chosen.sort(key=lambda f: f["updated_at"], reverse=True)
        return (chosen[:limit] if limit else chosen), "json"

    def counts(self) -> dict[tuple[str, str], int]:
        """Files per (dataset, status), from Redis when in step, else by scanning the JSON."""
        if self.in_step():
            assert self.mirror is not None
            return self.mirror.counts()
        totals: dict[tuple[str, str], int] = {}
        for f in self.store.scan():
            key = (f["dataset"], f["status"])
            totals[key] = totals.get(key, 0) + 1
        return totals

    # -- maintenance --------------------------------------------------------------------------
    def reindex(self) -> dict[str, Any]:
        """Rebuild the Redis mirror from the JSON files (``flags reindex``; queries do it on
        their own when the index is behind)."""
        if self.mirror is None:
            raise doc.FlagError("no Redis mirror configured")
        with self._rebuild_lock() as mine:
            if not mine:
                raise doc.FlagError("another process is rebuilding the index; try again shortly")
            return self._reindex_unlocked()

    def _reindex_unlocked(self) -> dict[str, Any]:
        assert self.mirror is not None
        began = time.perf_counter()
        stale_before = self.store.mirror_stale()
        corrupt: list[CorruptFlag] = []
        # Readers must not trust the index while it is being rebuilt: the stamp goes first.
        self.mirror.mark_built(None)
        removed = self.mirror.clear()
        mirrored = self.mirror.put_many(self.store.scan(on_error=corrupt.append))
        # Only clear the marker we saw: a write that failed during the rebuild keeps it set.
        if self.store.mirror_stale() == stale_before:
            self.store.clear_stale()
        # Writes that happened during the rebuild were put (or marked in flight) as usual.
        self._repair_inflight()
        self.mirror.mark_built(self.store.store_id, unindexed=len(corrupt))
        return {
            "mirrored": mirrored,
            "removed_keys": removed,
            "corrupt": [str(c.path) for c in corrupt],
            "seconds": round(time.perf_counter() - began, 3),
        }

    def check(self) -> Drift:
        """Compare the mirror with the JSON files: what is missing, extra, or behind in Redis."""
        drift = Drift(stale=self.store.mirror_stale())
        corrupt: list[CorruptFlag] = []
        on_disk = {f["file_id"]: f["revision"] for f in self.store.scan(on_error=corrupt.append)}
        drift.corrupt = [str(c.path) for c in corrupt]
        drift.json_flags = len(on_disk)
        if self.mirror is None:
            return drift
        mirrored = self.mirror.revisions()
        drift.redis_flags = len(mirrored)
        drift.missing_in_redis = sorted(set(on_disk) - set(mirrored))
        drift.extra_in_redis = sorted(set(mirrored) - set(on_disk))
        drift.behind_in_redis = sorted(
            i for i in set(on_disk) & set(mirrored) if mirrored[i] < on_disk[i]
        )
        return drift
