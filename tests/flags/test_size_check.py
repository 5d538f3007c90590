"""The index proves it is as large as the JSON files before a query trusts it; counting the files
scans every flag folder, so a count that agreed stands for a few seconds while the index size
stays the same (``Ledger._same_size``). A change of size recounts at once; a flag written
behind the index's back is found once the short mark expires."""

from __future__ import annotations

import fakeredis
import pytest

from flags import document as doc
from flags.ledger import Ledger
from flags.store import FlagStore, atomic_write_json


def register(ledger: Ledger, make_flag_args, n: int) -> list[str]:
    return [ledger.register(**make_flag_args(f"file {i}"))["file_id"] for i in range(n)]


def test_the_count_is_not_repeated_while_the_index_size_stands(
    ledger: Ledger, make_flag_args, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(ledger, make_flag_args, 5)
    assert ledger.in_step()  # the first query builds the index
    counted: list[int] = []
    real_count = FlagStore.count

    def counting(store: FlagStore) -> int:
        counted.append(1)
        return real_count(store)

    monkeypatch.setattr(FlagStore, "count", counting)
    assert ledger.in_step() and len(counted) == 1
    for _ in range(5):
        assert ledger.counts()[("sales", doc.RECEIVED)] == 5
    assert len(counted) == 1, "the folders were scanned once"
    ledger.register(**make_flag_args("one more"))  # the index grew: counted again
    assert ledger.counts()[("sales", doc.RECEIVED)] == 6 and len(counted) == 2


def test_a_flag_written_behind_the_index_is_found_once_the_mark_expires(
    ledger: Ledger, fake_redis: fakeredis.FakeRedis, make_flag_args
) -> None:
    register(ledger, make_flag_args, 3)
    assert ledger.in_step()
    stray = doc.new_flag(**make_flag_args("copied in by hand"))
    atomic_write_json(ledger.store.path(stray["file_id"]), stray)
    fake_redis.delete("flags:sized")  # what expiry does (SIZE_CHECK_TTL_S)
    listed, source = ledger.list()
    assert source == "redis" and len(listed) == 4  # rebuilt from the JSON files
