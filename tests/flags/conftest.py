from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fakeredis
import pytest

from flags.ledger import Ledger


def sha(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


@pytest.fixture
def make_flag_args() -> Callable[..., dict[str, Any]]:
    def make(
        content: str = "a,b\n1,2\n", dataset: str = "sales", name: str = "f.csv"
    ) -> dict[str, Any]:
        return {
            "dataset": dataset,
            "path": f"/inbox/{name}",
            "name": name,
            "size": len(content),
            "sha256": sha(content),
        }

    return make


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def ledger(tmp_path: Path, fake_redis: fakeredis.FakeRedis) -> Ledger:
    """A ledger on a temporary folder with a fakeredis mirror (unit tests)."""
    return Ledger.at(tmp_path / "flags", fake_redis)
