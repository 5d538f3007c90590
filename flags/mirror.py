"""The Redis mirror of the flags: fast queries by status, dataset and time, and cheap counts.

Keys (prefix ``flags:`` by default):

- ``flags:doc:<id>`` — hash: ``status``, ``dataset``, ``name``, ``revision``, ``updated``
  (epoch seconds), ``json`` (the whole flag);
- ``flags:status:<status>``, ``flags:dataset:<dataset>``, ``flags:ds_status:<dataset>:<status>`` —
  sets of ids (``SCARD`` is the count);
- ``flags:updated`` — sorted set of ids by last update time;
- ``flags:datasets`` — set of dataset names;
- ``flags:built`` — the id of the flag store this index was completely built from (absent after a
  flush or a restart with no data: the index then knows it is behind and is rebuilt);
- ``flags:inflight`` — ids whose JSON write has begun and whose put has not arrived yet (a process
  killed between the two leaves its id here: readers repair exactly those from the JSON);
- ``flags:sized`` — short-lived: the index's size when a check last counted as many JSON files
  (the count scans every flag folder; a check at the same size soon after skips it).

Every put is one Lua script: it moves the id between the index sets, clears its in-flight mark,
and refuses an older revision than the one stored, so concurrent writers and a concurrent
``reindex`` can never roll a flag back.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any

import redis

from flags.document import STATUSES
from pipeline.systems.redis import client as shared_client

PUT_SCRIPT = """
local p, id, rev = ARGV[1], ARGV[2], tonumber(ARGV[3])
local status, dataset, updated = ARGV[4], ARGV[5], ARGV[6]
local key = p .. 'doc:' .. id
local current = redis.call('HMGET', key, 'revision', 'status', 'dataset')
redis.call('SREM', p .. 'inflight', id)
if current[1] and tonumber(current[1]) >= rev then return 0 end
if current[2] then
  redis.call('SREM', p .. 'status:' .. current[2], id)
  redis.call('SREM', p .. 'dataset:' .. current[3], id)
  redis.call('SREM', p .. 'ds_status:' .. current[3] .. ':' .. current[2], id)
end
redis.call('HSET', key, 'revision', rev, 'status', status, 'dataset', dataset,
           'name', ARGV[7], 'updated', updated, 'json', ARGV[8])
redis.call('SADD', p .. 'status:' .. status, id)
redis.call('SADD', p .. 'dataset:' .. dataset, id)
redis.call('SADD', p .. 'ds_status:' .. dataset .. ':' .. status, id)
redis.call('SADD', p .. 'datasets', dataset)
redis.call('ZADD', p .. 'updated', updated, id)
return 1
"""


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


class RedisMirror:
    def __init__(self, client: redis.Redis | None = None, prefix: str = "flags:") -> None:
        self.client = client if client is not None else shared_client()
        self.prefix = prefix
        self._put = self.client.register_script(PUT_SCRIPT)

    def _args(self, flag: dict[str, Any]) -> list[Any]:
        return [
            self.prefix,
            flag["file_id"],
            flag["revision"],
            flag["status"],
            flag["dataset"],
            _epoch(flag["updated_at"]),
            flag["source"]["name"],
            json.dumps(flag, ensure_ascii=False, separators=(",", ":")),
        ]

    def begin(self, file_id: str) -> None:
        """Note that a JSON write of ``file_id`` is about to happen (cleared by its put)."""
        self.client.sadd(f"{self.prefix}inflight", file_id)

    def inflight(self) -> list[str]:
        return sorted(i.decode() for i in self.client.smembers(f"{self.prefix}inflight"))

    def settle(self, file_id: str) -> None:
        """Forget an in-flight mark whose JSON write never happened (no flag on disk)."""
        self.client.srem(f"{self.prefix}inflight", file_id)

    def built_from(self) -> str | None:
        """The id of the store this index was completely built from, or None (never, or lost)."""
        raw = self.client.get(f"{self.prefix}built")
        return None if raw is None else raw.decode()

    def mark_built(self, store_id: str | None, unindexed: int = 0) -> None:
        """Record a complete build (``unindexed``: files that could not be read, e.g. corrupt),
        or, with None, that the index is being rebuilt and must not be trusted."""
        if store_id is None:
            self.client.delete(
                f"{self.prefix}built", f"{self.prefix}unindexed", f"{self.prefix}sized"
            )
        else:
            self.client.set(f"{self.prefix}unindexed", unindexed)
            self.client.set(f"{self.prefix}built", store_id)

    def unindexed(self) -> int:
        """Flag files the last build could not index (corrupt): on disk, not in the index."""
        return int(self.client.get(f"{self.prefix}unindexed") or 0)

    def size(self) -> int:
        """How many flags the index holds."""
        return int(self.client.zcard(f"{self.prefix}updated"))

    def size_state(self) -> tuple[int, int, int | None]:
        """In one round trip: the flags the index holds, those the last build could not index,
        and the size at which a recent check found the index as large as the JSON files (None:
        no such check lately)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(f"{self.prefix}updated")
        pipe.get(f"{self.prefix}unindexed")
        pipe.get(f"{self.prefix}sized")
        size, unindexed, sized = pipe.execute()
        return int(size), int(unindexed or 0), None if sized is None else int(sized)

    def mark_sized(self, size: int, ttl_s: float) -> None:
        """Remember for ``ttl_s`` that the index held ``size`` flags, as many as the JSON files."""
        self.client.set(f"{self.prefix}sized", size, px=max(1, int(ttl_s * 1000)))

    def put(self, flag: dict[str, Any]) -> bool:
        """Mirror one flag; False if Redis already holds this revision or a newer one."""
        return bool(self._put(keys=[], args=self._args(flag)))

    def put_many(self, flags: Iterable[dict[str, Any]], batch: int = 1000) -> int:
        """Mirror many flags in pipelined batches (reindex); returns how many were sent."""
        sent = 0
        pipe = self.client.pipeline(transaction=False)
        for flag in flags:
            self._put(keys=[], args=self._args(flag), client=pipe)
            sent += 1
            if sent % batch == 0:
                pipe.execute()
        pipe.execute()
        return sent

    # -- queries ------------------------------------------------------------------------------
    def ids(
        self,
        *,
        status: str | None = None,
        dataset: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> list[str]:
        """Flag ids by status and/or dataset and/or update time, newest first."""
        if since is not None or until is not None:
            low = since.timestamp() if since else "-inf"
            high = until.timestamp() if until else "+inf"
            by_time = [
                i.decode() for i in self.client.zrevrangebyscore(f"{self.prefix}updated", high, low)
            ]
        else:
            by_time = None
        if status and dataset:
            members = self.client.smembers(f"{self.prefix}ds_status:{dataset}:{status}")
        elif status:
            members = self.client.smembers(f"{self.prefix}status:{status}")
        elif dataset:
            members = self.client.smembers(f"{self.prefix}dataset:{dataset}")
        else:
            members = None
        if members is None:
            if by_time is not None:
                return by_time
            return [i.decode() for i in self.client.zrevrange(f"{self.prefix}updated", 0, -1)]
        chosen = {m.decode() for m in members}
        if by_time is not None:
            return [i for i in by_time if i in chosen]
        order = self.client.zmscore(f"{self.prefix}updated", list(chosen)) if chosen else []
        ranked = sorted(zip(chosen, order, strict=True), key=lambda x: -(x[1] or 0))
        return [i for i, _ in ranked]

    def get(self, file_id: str) -> dict[str, Any] | None:
        raw = self.client.hget(f"{self.prefix}doc:{file_id}", "json")
        return None if raw is None else json.loads(raw)

    def get_many(self, file_ids: list[str]) -> list[dict[str, Any]]:
        pipe = self.client.pipeline(transaction=False)
        for file_id in file_ids:
            pipe.hget(f"{self.prefix}doc:{file_id}", "json")
        return [json.loads(raw) for raw in pipe.execute() if raw is not None]

    def revisions(self) -> dict[str, int]:
        """Every mirrored id and its revision (for ``check``)."""
        ids = [i.decode() for i in self.client.zrange(f"{self.prefix}updated", 0, -1)]
        pipe = self.client.pipeline(transaction=False)
        for file_id in ids:
            pipe.hget(f"{self.prefix}doc:{file_id}", "revision")
        return {i: int(r) for i, r in zip(ids, pipe.execute(), strict=True) if r is not None}

    def counts(self) -> dict[tuple[str, str], int]:
        """Files per (dataset, status): a handful of SCARDs, cheap enough for every metrics push."""
        datasets = sorted(d.decode() for d in self.client.smembers(f"{self.prefix}datasets"))
        pipe = self.client.pipeline(transaction=False)
        keys = [(d, s) for d in datasets for s in STATUSES]
        for d, s in keys:
            pipe.scard(f"{self.prefix}ds_status:{d}:{s}")
        return {k: int(n) for k, n in zip(keys, pipe.execute(), strict=True) if n}

    # -- maintenance --------------------------------------------------------------------------
    def keys(self) -> Iterator[bytes]:
        yield from self.client.scan_iter(match=f"{self.prefix}*", count=1000)

    def clear(self) -> int:
        removed = 0
        batch: list[bytes] = []
        for key in self.keys():
            batch.append(key)
            if len(batch) >= 1000:
                removed += int(self.client.unlink(*batch))
                batch.clear()
        if batch:
            removed += int(self.client.unlink(*batch))
        return removed
