"""The inbox on the real servers: every file gets a clear outcome in its flag; nothing is lost."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import luigi
import pytest

import pipeline.inbox.load as inbox_module
from flags import document as doc
from pipeline.inbox.chain import Inbox
from pipeline.inbox.files import ready_files
from pipeline.inbox.tasks import ProcessInbox
from tests.fixtures.inbox import csv_text, pg_rows, sales_rows

pytestmark = pytest.mark.integration


def sweep(**params) -> bool:
    return luigi.build(
        [ProcessInbox(min_age_s=0, **params)], local_scheduler=True, log_level="WARNING"
    )


def flags_by_name(inbox: Inbox) -> dict[str, dict]:
    return {f["source"]["name"]: f for f in inbox.ledger.list()[0]}


def kept_bytes(inbox: Inbox, flag: dict) -> bytes:
    """Where the file's original bytes are now: the archive (gzip) or the quarantine."""
    if "archive_path" in flag["details"]:
        return gzip.decompress(Path(flag["details"]["archive_path"]).read_bytes())
    return Path(flag["details"]["quarantine_path"]).read_bytes()


def test_files_flow_from_inbox_to_postgres_to_archive(inbox: Inbox, land) -> None:
    contents = {
        "sales_2024_w01_north.csv": csv_text(sales_rows(1, 40, "North")),
        "sales_2024_w01_south.csv": csv_text(sales_rows(1001, 30, "South")),
    }
    for name, text in contents.items():
        land(name, text)
    assert sweep()
    flags = flags_by_name(inbox)
    assert {f["status"] for f in flags.values()} == {doc.ARCHIVED}
    north = flags["sales_2024_w01_north.csv"]
    assert [h["to"] for h in north["history"]] == [
        "received",
        "validated",
        "transformed",
        "loaded",
        "archived",
    ]
    assert north["stages"]["loaded"]["rows_out"] == 40
    assert len(pg_rows()) == 70
    for name, flag in flags.items():
        assert kept_bytes(inbox, flag) == contents[name].encode()
    assert list(inbox.paths.inbox.iterdir()) == []
    assert [p for p in inbox.paths.work.iterdir() if not p.name.startswith(".")] == []


def test_a_rerun_changes_nothing(inbox: Inbox, land) -> None:
    land("sales_2024_w02_east.csv", csv_text(sales_rows(1, 25, "East")))
    assert sweep()
    before = (pg_rows(), inbox.ledger.list()[0])
    assert ProcessInbox(min_age_s=0).complete()
    assert sweep()
    assert (pg_rows(), inbox.ledger.list()[0]) == before


def test_the_same_bytes_again_are_a_duplicate_archived_not_loaded(inbox: Inbox, land) -> None:
    text = csv_text(sales_rows(1, 10))
    land("sales_2024_w03_north.csv", text)
    assert sweep()
    land("sales_2024_w03_north.csv", text)  # re-delivered
    land("copy of it.csv", text)
    assert sweep()
    flags = inbox.ledger.list()[0]
    duplicates = [f for f in flags if f["status"] == doc.DUPLICATE]
    assert len(duplicates) == 2 and len(pg_rows()) == 10
    original = next(f for f in flags if f["status"] == doc.ARCHIVED)
    for dup in duplicates:
        assert dup["duplicate_of"] == original["file_id"]
        assert kept_bytes(inbox, dup) == text.encode()


def test_bad_rows_go_to_a_quarantine_file_and_the_rest_is_loaded(inbox: Inbox, land) -> None:
    rows = sales_rows(1, 99)
    rows.insert(10, "100,5,5,2,2024-01-02,12.00,Atlantis")
    rows.append(rows[0])  # a repeated sale
    land("sales_2024_w04_north.csv", csv_text(rows))
    assert sweep()
    flag = flags_by_name(inbox)["sales_2024_w04_north.csv"]
    assert flag["status"] == doc.ARCHIVED
    assert flag["stages"]["validated"]["rows_rejected"] == 1
    assert "row 11 column region: allowed" in flag["history"][1]["note"]
    assert "1 duplicate key(s) removed" in flag["history"][2]["note"]
    rejects = Path(flag["details"]["rejects_path"]).read_text().splitlines()
    assert rejects == [
        "row,column,rule,value",
        '11,region,"allowed: East, North, South, West",Atlantis',
    ]
    assert len(pg_rows()) == 99


def test_over_the_threshold_the_whole_file_is_quarantined(inbox: Inbox, land) -> None:
    rows = sales_rows(1, 10) + ["x,1,1,1,2024-01-01,1,North"] * 2
    text = csv_text(rows)
    land("sales_2024_w05_north.csv", text)
    assert sweep()
    flag = flags_by_name(inbox)["sales_2024_w05_north.csv"]
    assert flag["status"] == doc.QUARANTINED
    assert "over the reject threshold 5%" in flag["history"][-1]["note"]
    assert kept_bytes(inbox, flag) == text.encode()
    assert pg_rows() == []


GOOD = csv_text(sales_rows(1, 5))


@pytest.mark.parametrize(
    ("name", "content", "status", "reason"),
    [
        ("sales_2024_w06_north.csv", b"", doc.QUARANTINED, "empty file (0 bytes)"),
        ("sales_2024_w06_south.csv", csv_text([]).encode(), doc.QUARANTINED, "header only"),
        (
            "sales_2024_w06_east.csv",
            GOOD.replace(",", ";").encode(),
            doc.QUARANTINED,
            "wrong delimiter",
        ),
        (
            "sales_2024_w06_west.csv",
            "sale_id,région\n1,é\n".encode("latin-1"),
            doc.QUARANTINED,
            "not valid utf-8",
        ),
        ("sales_2024_w07_north.csv", os.urandom(4096) + b"\x00", doc.QUARANTINED, "binary content"),
        ("report 2024 (final).csv", GOOD.encode(), doc.QUARANTINED, "no dataset contract matches"),
        ("..sales_2024_w07_south.csv", GOOD.encode(), None, None),  # hidden: never picked up
        ("sales_2024_w07_east.csv..", GOOD.encode(), doc.QUARANTINED, "no dataset contract"),
        ("a\\b\\sales_2024_w07_west.csv", GOOD.encode(), doc.QUARANTINED, "no dataset contract"),
        (b"sales_\xff\xfe_w08.csv", GOOD.encode(), doc.QUARANTINED, "no dataset contract"),
        (
            "sales_2024_w08_north.csv",
            csv_text(sales_rows(1, 40) + [f"41,1,1,1,2024-01-01,1,{'N' * 5_000_000}"]).encode(),
            doc.ARCHIVED,
            None,
        ),
    ],
)
def test_hostile_input_gets_a_clear_outcome_and_nothing_is_lost(
    inbox: Inbox, land, name, content: bytes, status, reason
) -> None:
    path = land(name, content)
    assert sweep() or status is None
    flags = inbox.ledger.list()[0]
    if status is None:
        assert flags == [] and path.exists()  # left alone, untouched
        return
    assert len(flags) == 1
    flag = flags[0]
    assert flag["status"] == status
    if reason:
        assert reason in flag["history"][-1]["note"]
    assert kept_bytes(inbox, flag) == content
    assert not path.exists()


def test_a_symlink_out_of_the_inbox_is_never_followed(inbox: Inbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    link = inbox.paths.inbox / "sales_2024_w09_north.csv"
    link.symlink_to(secret)
    assert sweep()
    (flag,) = inbox.ledger.list()[0]
    assert flag["status"] == doc.QUARANTINED
    assert "symbolic link to" in flag["history"][-1]["note"]
    assert Path(flag["details"]["quarantine_path"]).is_symlink()  # the link itself, kept
    assert secret.read_text() == "do not read me"


def test_a_file_still_being_written_waits(inbox: Inbox, land) -> None:
    path = land("sales_2024_w10_north.csv", GOOD, age_s=0)
    assert ready_files(inbox.paths.inbox, min_age_s=10) == []
    assert not ProcessInbox(min_age_s=10).complete()  # something is on its way
    began = time.monotonic()
    assert luigi.build([ProcessInbox(min_age_s=1)], local_scheduler=True, log_level="WARNING")
    assert time.monotonic() - began >= 0.9  # it waited until the file was complete
    assert not path.exists() and inbox.ledger.list()[0][0]["status"] == doc.ARCHIVED
    for partial in ("sales_2024_w10_south.csv.part", ".sales_2024_w10_east.csv.tmp"):
        land(partial, GOOD)
    assert ready_files(inbox.paths.inbox, min_age_s=0) == []  # partial uploads are never taken


def test_a_crash_half_way_then_a_rerun_gives_the_exact_result(
    inbox: Inbox, land, monkeypatch: pytest.MonkeyPatch
) -> None:
    land("sales_2024_w11_north.csv", csv_text(sales_rows(1, 20, "North")))
    land("sales_2024_w11_south.csv", csv_text(sales_rows(1001, 20, "South")))
    real = inbox_module.write_marker
    calls = {"n": 0}

    def dies_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed mid-load")
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(inbox_module, "write_marker", dies_on_second)
        assert not sweep()
    flags = sorted(inbox.ledger.list()[0], key=lambda f: f["status"])
    assert [f["status"] for f in flags] == [doc.ARCHIVED, doc.FAILED]
    failed = flags[1]
    assert failed["last_error"] == {
        **failed["last_error"],
        "stage": "loaded",
        "type": "RuntimeError",
    }
    assert {r[3] for r in pg_rows()} == {flags[0]["file_id"]}  # the failed load left nothing
    assert len(pg_rows()) == 20
    assert sweep()
    assert {f["status"] for f in inbox.ledger.list()[0]} == {doc.ARCHIVED}
    assert [r[0] for r in pg_rows()] == list(range(1, 21)) + list(range(1001, 1021))
    assert inbox.ledger.get(failed["file_id"])["attempts"] == 2


def test_a_crash_after_commit_before_the_flag_does_not_double_rows(
    inbox: Inbox, land, monkeypatch: pytest.MonkeyPatch
) -> None:
    land("sales_2024_w12_north.csv", csv_text(sales_rows(1, 15)))
    real_advance = inbox.ledger.__class__.advance

    real_advance_many = inbox.ledger.__class__.advance_many

    def dies_on_loaded(self, file_id, status, **info):
        if status == doc.LOADED:
            raise RuntimeError("killed after COPY committed")
        return real_advance(self, file_id, status, **info)

    def dies_on_loaded_many(self, file_id, steps):  # loaded + archived are one write
        if any(status == doc.LOADED for status, _ in steps):
            raise RuntimeError("killed after COPY committed")
        return real_advance_many(self, file_id, steps)

    with monkeypatch.context() as patch:
        patch.setattr(inbox.ledger.__class__, "advance", dies_on_loaded)
        patch.setattr(inbox.ledger.__class__, "advance_many", dies_on_loaded_many)
        assert not sweep()
    assert len(pg_rows()) == 15
    assert sweep()
    assert len(pg_rows()) == 15
    (flag,) = inbox.ledger.list()[0]
    assert flag["status"] == doc.ARCHIVED and flag["stages"]["loaded"]["rows_out"] == 15


def test_a_batch_summarises_its_brin_ranges_once_at_its_end(
    inbox: Inbox, land, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The BRIN ranges a batch's loads appended are summarised once, when the batch ends (a
    transaction per file before), and none is left unsummarised."""
    from pipeline.inbox.tasks import IngestFiles
    from pipeline.systems import postgres

    calls: list[str] = []
    real = inbox_module.summarize_brin

    def counting(cur, table: str) -> int:
        calls.append(table)
        return real(cur, table)

    monkeypatch.setattr(inbox_module, "summarize_brin", counting)
    ids = [
        inbox.register(
            land(f"sales_2024_w0{week}_north.csv", csv_text(sales_rows(week * 1000, 40)))
        )
        for week in (1, 2, 3)
    ]
    IngestFiles(file_ids=ids).run()
    assert {inbox.ledger.get(i)["status"] for i in ids} == {doc.ARCHIVED}
    assert calls == ["sales.sales"]
    with postgres.transaction() as cur:
        assert postgres.summarize_brin(cur, "sales.sales") == 0, "a range was left unsummarised"
    assert len(pg_rows()) == 120
