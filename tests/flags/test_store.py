"""The JSON store: atomic, durable, locked writes; clear errors for corrupt files."""

from __future__ import annotations

import json
import multiprocessing
import threading
from pathlib import Path

import pytest

from flags import document as doc
from flags.ledger import Ledger
from flags.store import CorruptFlag, FlagNotFound, FlagStore


def test_create_then_read_back(tmp_path: Path, make_flag_args) -> None:
    store = FlagStore(tmp_path)
    flag = store.create(doc.new_flag(**make_flag_args()))
    path = store.path(flag["file_id"])
    assert path.parent.name == flag["file_id"][:2]
    assert store.get(flag["file_id"]) == flag
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(doc.FlagError, match="already exists"):
        store.create(flag)


def test_unknown_and_hostile_ids_are_refused(tmp_path: Path) -> None:
    store = FlagStore(tmp_path)
    with pytest.raises(FlagNotFound):
        store.get("0" * 24)
    for hostile in ("../../etc/passwd", "0" * 24 + "/x", "", "ABC"):
        with pytest.raises(doc.FlagError, match="not a flag id"):
            store.path(hostile)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not JSON"),
        (b'{"schema_version": 1, "file_id": "ab', "not JSON"),  # truncated mid-write
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"schema_version": 1}', "breaks the schema"),
    ],
)
def test_a_corrupt_flag_names_the_file_and_the_others_still_load(
    tmp_path: Path, make_flag_args, content: bytes, reason: str
) -> None:
    store = FlagStore(tmp_path)
    good = store.create(doc.new_flag(**make_flag_args("good")))
    bad = store.create(doc.new_flag(**make_flag_args("bad")))
    store.path(bad["file_id"]).write_bytes(content)
    with pytest.raises(CorruptFlag, match=reason) as caught:
        store.get(bad["file_id"])
    assert str(store.path(bad["file_id"])) in str(caught.value)
    errors: list[CorruptFlag] = []
    assert [f["file_id"] for f in store.scan(on_error=errors.append)] == [good["file_id"]]
    assert [e.path for e in errors] == [store.path(bad["file_id"])]


def test_a_flag_file_under_another_id_is_corrupt(tmp_path: Path, make_flag_args) -> None:
    store = FlagStore(tmp_path)
    a = store.create(doc.new_flag(**make_flag_args("a")))
    b = store.create(doc.new_flag(**make_flag_args("b")))
    store.path(b["file_id"]).write_bytes(store.path(a["file_id"]).read_bytes())
    with pytest.raises(CorruptFlag, match=f"holds flag {a['file_id']}"):
        store.get(b["file_id"])


def test_an_illegal_change_leaves_the_file_untouched(tmp_path: Path, make_flag_args) -> None:
    ledger = Ledger.at(tmp_path, None)
    flag = ledger.register(**make_flag_args())
    before = ledger.store.path(flag["file_id"]).read_bytes()
    with pytest.raises(doc.IllegalTransition):
        ledger.advance(flag["file_id"], doc.LOADED)
    assert ledger.store.path(flag["file_id"]).read_bytes() == before


def _hammer(root: str, file_id: str, worker: int, times: int) -> None:
    ledger = Ledger.at(Path(root), None)
    for i in range(times):
        ledger.annotate(file_id, f"w{worker}_{i}", i)


def test_concurrent_writers_in_processes_never_lose_an_update(
    tmp_path: Path, make_flag_args
) -> None:
    ledger = Ledger.at(tmp_path, None)
    flag = ledger.register(**make_flag_args())
    workers, times = 4, 25
    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_hammer, args=(str(tmp_path), flag["file_id"], w, times))
        for w in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    final = ledger.get(flag["file_id"])
    assert len(final["details"]) == workers * times
    assert final["revision"] == 1 + workers * times == len(final["history"])
    # Each entry names the process that wrote it: every forked worker, by its own pid.
    assert {h["pid"] for h in final["history"][1:]} == {p.pid for p in procs}


def test_concurrent_writers_in_threads_never_lose_an_update(tmp_path: Path, make_flag_args) -> None:
    ledger = Ledger.at(tmp_path, None)
    flag = ledger.register(**make_flag_args())
    threads = [
        threading.Thread(target=_hammer, args=(str(tmp_path), flag["file_id"], w, 20))
        for w in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ledger.get(flag["file_id"])["details"]) == 80


def test_written_files_are_sorted_json_with_non_ascii_names_kept(
    tmp_path: Path, make_flag_args
) -> None:
    store = FlagStore(tmp_path)
    flag = store.create(doc.new_flag(**make_flag_args(name="продажи север.csv")))
    text = store.path(flag["file_id"]).read_text(encoding="utf-8")
    assert json.loads(text) == flag
    assert "продажи север.csv" in text
    assert text.index('"attempts"') < text.index('"dataset"') < text.index('"status"')
