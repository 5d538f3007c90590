"""The Redis mirror (fakeredis here; the real Redis in test_flags_redis.py) and the ledger."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import fakeredis
import pytest
import redis

from flags import document as doc
from flags.ledger import Ledger
from flags.store import atomic_write_json


def fill(ledger: Ledger, make_flag_args, n: int = 6) -> list[str]:
    ids = []
    for i in range(n):
        flag = ledger.register(
            **make_flag_args(f"content {i}", dataset="sales" if i % 2 else "crm")
        )
        ids.append(flag["file_id"])
    ledger.advance(ids[0], doc.VALIDATED, rows_in=10, rows_out=10, rows_rejected=0)
    ledger.advance(ids[1], doc.QUARANTINED, note="wrong delimiter")
    ledger.fail(ids[2], stage="validated", error=ValueError("row 3: amount < 0"))
    return ids


def test_list_and_counts_by_status_and_dataset(ledger: Ledger, make_flag_args) -> None:
    ids = fill(ledger, make_flag_args)
    flags, source = ledger.list(status=doc.RECEIVED)
    assert source == "redis"
    assert sorted(f["file_id"] for f in flags) == sorted(ids[3:])
    flags, _ = ledger.list(status=doc.RECEIVED, dataset="sales")
    assert sorted(f["file_id"] for f in flags) == sorted(i for i in ids[3:] if ids.index(i) % 2)
    assert ledger.counts() == {
        ("crm", "validated"): 1,
        ("crm", "failed"): 1,
        ("crm", "received"): 1,
        ("sales", "quarantined"): 1,
        ("sales", "received"): 2,
    }
    newest, _ = ledger.list(limit=1)
    assert newest[0]["file_id"] == ids[2]  # the failure was the last write


def test_list_by_time(ledger: Ledger, make_flag_args) -> None:
    ids = fill(ledger, make_flag_args)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert ledger.list(since=later)[0] == []
    everything, _ = ledger.list(since=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
    assert len(everything) == len(ids)
    failed, _ = ledger.list(
        status=doc.FAILED, since=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    )
    assert [f["file_id"] for f in failed] == [ids[2]]


def test_redis_and_json_answer_the_same(ledger: Ledger, make_flag_args) -> None:
    fill(ledger, make_flag_args)
    json_only = Ledger(ledger.store, None)
    for status in doc.STATUSES:
        fast, _ = ledger.list(status=status)
        slow, source = json_only.list(status=status)
        assert source == "json"
        assert sorted(f["file_id"] for f in fast) == sorted(f["file_id"] for f in slow)
    assert ledger.counts() == json_only.counts()


def test_an_older_revision_never_overwrites_a_newer_one(ledger: Ledger, make_flag_args) -> None:
    flag = ledger.register(**make_flag_args())
    newer = ledger.advance(flag["file_id"], doc.VALIDATED)
    assert ledger.mirror is not None
    assert ledger.mirror.put(flag) is False  # a late writer, or a reindex racing a writer
    assert ledger.mirror.get(flag["file_id"]) == newer
    assert ledger.list(status=doc.RECEIVED)[0] == []


def test_redis_down_during_writes_loses_nothing_and_reindex_restores(
    tmp_path: Path, fake_redis: fakeredis.FakeRedis, make_flag_args
) -> None:
    ledger = Ledger.at(tmp_path, fake_redis)
    ids = fill(ledger, make_flag_args, n=4)
    down = Ledger.at(tmp_path, redis.Redis(port=1, socket_connect_timeout=0.2))  # nothing listens
    extra = down.register(**make_flag_args("while redis was down"))
    down.advance(ids[3], doc.VALIDATED)
    assert down.get(extra["file_id"])["status"] == doc.RECEIVED  # JSON has it
    assert ledger.store.mirror_stale() is not None
    flags, source = down.list(status=doc.VALIDATED)  # Redis still down: the JSON files answer
    assert source == "json" and {f["file_id"] for f in flags} == {ids[0], ids[3]}
    drift = ledger.check()
    assert not drift.clean
    assert drift.missing_in_redis == [extra["file_id"]] and drift.behind_in_redis == [ids[3]]
    # Redis answers again: the first query sees the stale marker and rebuilds the index first.
    flags, source = ledger.list(status=doc.VALIDATED)
    assert source == "redis" and {f["file_id"] for f in flags} == {ids[0], ids[3]}
    assert ledger.check().clean and ledger.store.mirror_stale() is None
    assert ledger.reindex()["mirrored"] == 5


def test_a_flushed_index_is_never_trusted_empty(
    ledger: Ledger, fake_redis: fakeredis.FakeRedis, make_flag_args
) -> None:
    ids = fill(ledger, make_flag_args)
    before = ledger.counts()
    fake_redis.flushdb()
    flags, source = ledger.list()
    assert source == "redis" and sorted(f["file_id"] for f in flags) == sorted(ids)
    assert ledger.counts() == before and ledger.check().clean


def test_a_write_cut_between_json_and_redis_is_repaired_by_the_next_query(
    ledger: Ledger, make_flag_args
) -> None:
    ids = fill(ledger, make_flag_args, n=6)
    target = next(i for i in ids if ledger.get(i)["status"] == doc.RECEIVED)
    validated_before = {f["file_id"] for f in ledger.list(status=doc.VALIDATED)[0]}
    # What a process killed after the JSON write and before the Redis put leaves behind.
    assert ledger.mirror is not None
    ledger.mirror.begin(target)
    atomic_write_json(ledger.store.path(target), doc.advance(ledger.get(target), doc.VALIDATED))
    assert ledger.check().behind_in_redis == [target]
    flags, source = ledger.list(status=doc.VALIDATED)
    assert source == "redis" and {f["file_id"] for f in flags} == validated_before | {target}
    assert ledger.check().clean and ledger.mirror.inflight() == []


def test_an_index_short_of_the_json_files_is_rebuilt(
    ledger: Ledger, fake_redis: fakeredis.FakeRedis, make_flag_args
) -> None:
    ids = fill(ledger, make_flag_args, n=4)
    assert ledger.list()[1] == "redis"
    fake_redis.delete(f"flags:doc:{ids[1]}")
    fake_redis.zrem("flags:updated", ids[1])  # e.g. Redis restored from an older snapshot
    flags, source = ledger.list()
    assert source == "redis" and sorted(f["file_id"] for f in flags) == sorted(ids)


def test_a_flushed_redis_loses_nothing(ledger: Ledger, fake_redis, make_flag_args) -> None:
    ids = fill(ledger, make_flag_args)
    before = ledger.counts()
    fake_redis.flushall()
    assert sorted(ledger.check().missing_in_redis) == sorted(ids)
    ledger.reindex()
    assert ledger.check().clean
    assert ledger.counts() == before


def test_reindex_drops_what_json_does_not_have(ledger: Ledger, make_flag_args) -> None:
    ids = fill(ledger, make_flag_args)
    ledger.store.path(ids[5]).unlink()  # e.g. an operator removed a flag by hand
    assert ledger.check().extra_in_redis == [ids[5]]
    ledger.reindex()
    assert ledger.check().clean
    assert ids[5] not in {f["file_id"] for f in ledger.list()[0]}


def test_check_and_reindex_report_corrupt_files(ledger: Ledger, make_flag_args) -> None:
    ids = fill(ledger, make_flag_args)
    ledger.store.path(ids[4]).write_text("{ truncated")
    drift = ledger.check()
    assert drift.corrupt == [str(ledger.store.path(ids[4]))]
    result = ledger.reindex()
    assert result["corrupt"] == [str(ledger.store.path(ids[4]))]
    assert result["mirrored"] == 5


def test_unknown_status_is_a_clear_error(ledger: Ledger) -> None:
    with pytest.raises(doc.FlagError, match="unknown status 'shipped'"):
        ledger.list(status="shipped")
