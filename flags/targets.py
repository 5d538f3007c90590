"""Luigi targets built on the flags, and a Redis marker target of the project's own.

Luigi 3.8.1's ``luigi.contrib.redis_store.RedisTarget.marker_key()`` raises
``KeyError: 'marker_prefix'`` (a regression of its Parameter refactor), hence ``RedisMarkerTarget``.
"""

from __future__ import annotations

import datetime as dt

import luigi
import redis

from flags import document as doc
from flags.ledger import Ledger
from flags.store import FlagNotFound
from pipeline.systems.redis import client


class FlagTarget(luigi.Target):
    """Exists once the file ``file_id`` has reached ``stage`` (or is settled: archived, duplicate,
    quarantined), answered from its JSON flag, the durable record. A file task whose output is
    this target is skipped when done and redone when not, whatever Redis says."""

    def __init__(self, file_id: str, stage: str, ledger: Ledger | None = None) -> None:
        if stage not in doc.STAGES:
            raise doc.FlagError(f"unknown stage {stage!r}; stages: {', '.join(doc.STAGES)}")
        self.file_id = file_id
        self.stage = stage
        self._ledger = ledger

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            self._ledger = Ledger.from_settings()
        return self._ledger

    def exists(self) -> bool:
        try:
            flag = self.ledger.get(self.file_id)
        except FlagNotFound:
            return False
        return doc.reached(flag, self.stage)


class RedisMarkerTarget(luigi.Target):
    """A short-lived marker in Redis (notification sent, alert cooldown), with a time to live.

    ``touch`` sets it; it exists until it expires. Keys live under ``markers:``."""

    def __init__(
        self,
        name: str,
        ttl: dt.timedelta | None = None,
        client: redis.Redis | None = None,
        prefix: str = "markers:",
    ) -> None:
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"marker names have no spaces: {name!r}")
        self.key = f"{prefix}{name}"
        self.ttl = ttl
        self._client = client

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = client()
        return self._client

    def exists(self) -> bool:
        return bool(self.client.exists(self.key))

    def touch(self, value: str = "1") -> None:
        if self.ttl is None:
            self.client.set(self.key, value)
        else:
            self.client.set(self.key, value, px=max(1, int(self.ttl.total_seconds() * 1000)))

    def remove(self) -> None:
        self.client.delete(self.key)

    def ttl_left(self) -> dt.timedelta | None:
        ms = int(self.client.pttl(self.key))
        return None if ms < 0 else dt.timedelta(milliseconds=ms)
