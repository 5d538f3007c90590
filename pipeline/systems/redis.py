"""Redis I/O: the one place a Redis connection is opened (the flag index, metrics' cumulative
values, short-lived locks and caches). Redis holds nothing a person would miss: the flag JSON
files and PostgreSQL are the records.

``client()`` gives one client per process and server: an event per task must not open a
connection each time, and a client must not cross a fork (Luigi's workers fork), so the pid is
part of the key. ``connect()`` opens a new one (a test's private server, a benchmark's db).
"""

from __future__ import annotations

import os

import redis

from config.settings import RedisSettings, load_settings

_clients: dict[tuple[int, str, int, int, float], redis.Redis] = {}


def connect(settings: RedisSettings | None = None, timeout: float | None = None) -> redis.Redis:
    """A new client that gives up quickly (``timeout``, default the ``timeout_s`` setting): a
    slow or absent Redis must never stall a task."""
    r = settings or load_settings().redis
    timeout = r.timeout_s if timeout is None else timeout
    return redis.Redis(
        host=r.host,
        port=r.port,
        db=r.db,
        password=r.password or None,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )


def client(settings: RedisSettings | None = None) -> redis.Redis:
    """This process's client for the configured server and db."""
    r = settings or load_settings().redis
    key = (os.getpid(), r.host, r.port, r.db, r.timeout_s)
    found = _clients.get(key)
    if found is None:
        found = _clients[key] = connect(r)
    return found
