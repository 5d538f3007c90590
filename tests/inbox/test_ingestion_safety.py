"""Ingestion on the real servers: values load exactly, one bad file never blocks the others,
resources stay bounded, and a hostile file system is never trusted."""

from __future__ import annotations

import dataclasses
import errno
import gzip
import os
import signal
import socket
from decimal import Decimal
from pathlib import Path

import luigi
import pytest

import pipeline.inbox.register as register_module
import pipeline.inbox.stages as stages_module
import pipeline.inbox.validate as validate_module
from flags import document as doc
from pipeline.inbox.chain import Inbox
from pipeline.inbox.contract import CONTRACTS, INT64_MAX, SALES
from pipeline.inbox.tasks import ProcessInbox
from tests.fixtures.inbox import csv_text, pg_rows, sales_rows

pytestmark = pytest.mark.integration


def sweep() -> bool:
    return luigi.build([ProcessInbox(min_age_s=0)], local_scheduler=True, log_level="WARNING")


def sweep_within(seconds: float) -> bool:
    """A sweep that fails the test instead of hanging it (a blocking open of a FIFO would)."""

    def blocked(signum: int, frame: object) -> None:
        raise TimeoutError(f"the sweep blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return sweep()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def flags_by_name(inbox: Inbox) -> dict[str, dict]:
    return {f["source"]["name"]: f for f in inbox.ledger.list()[0]}


def kept_bytes(flag: dict) -> bytes:
    if "archive_path" in flag["details"]:
        return gzip.decompress(Path(flag["details"]["archive_path"]).read_bytes())
    return Path(flag["details"]["quarantine_path"]).read_bytes()


EXACT_ROWS = [
    "123456789012345678,7,7,1,2024-01-02,0.125,North",
    "9007199254740993,7,7,1,2024-01-02,1.005,North",
    f"{INT64_MAX},7,7,1,2024-01-02,2.675,North",
]


# -- exact values ------------------------------------------------------------------------------
def test_huge_ids_and_half_up_amounts_load_into_postgres_exactly(inbox: Inbox, land) -> None:
    land("sales_2024_w20_north.csv", csv_text(EXACT_ROWS))
    assert sweep()
    (flag,) = inbox.ledger.list()[0]
    assert flag["status"] == doc.ARCHIVED
    assert [r[:3] for r in pg_rows()] == [
        (9007199254740993, "North", Decimal("1.01")),
        (123456789012345678, "North", Decimal("0.13")),
        (INT64_MAX, "North", Decimal("2.68")),
    ]


def test_with_one_bad_row_in_the_id_column_the_rest_still_load_exactly(inbox: Inbox, land) -> None:
    rows = sales_rows(1, 27) + EXACT_ROWS
    rows.insert(12, "١٢٣,7,7,1,2024-01-02,1.00,North")  # non-ASCII digits: a bad row, not NULL
    land("sales_2024_w20_south.csv", csv_text(rows))
    assert sweep()
    (flag,) = inbox.ledger.list()[0]
    assert flag["status"] == doc.ARCHIVED
    assert flag["stages"]["validated"]["rows_rejected"] == 1
    assert "row 13 column sale_id: type: integer (value '١٢٣')" in flag["history"][1]["note"]
    loaded = {r[0]: r[2] for r in pg_rows()}
    assert len(loaded) == 30 and None not in loaded and None not in loaded.values()
    assert loaded[123456789012345678] == Decimal("0.13")
    assert loaded[9007199254740993] == Decimal("1.01")
    assert loaded[INT64_MAX] == Decimal("2.68")


def test_a_file_larger_than_a_chunk_loads_exactly_with_bad_rows_named_in_the_whole_file(
    inbox: Inbox, land, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validate_module, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(validate_module, "CHUNK_ROWS", 100)
    monkeypatch.setattr(stages_module, "BATCH_ROWS", 64)
    rows = sales_rows(1, 2000)
    rows[499] = "500,1,1,1,2024-01-02,1.005,Mars"
    rows[1200] = '1201,1,1,1,2024-01-02,0.125,"North"'  # a quote: row by row from here on
    rows[1700] = "x,1,1,1,2024-01-02,1,North"
    rows.append(rows[3])  # a re-sent row, chunks after the first
    land("sales_2024_w21_north.csv", csv_text(rows))
    assert sweep()
    (flag,) = inbox.ledger.list()[0]
    assert flag["status"] == doc.ARCHIVED
    assert flag["stages"]["validated"]["rows_in"] == 2001
    assert flag["stages"]["loaded"]["rows_out"] == 1998
    rejects = Path(flag["details"]["rejects_path"]).read_text().splitlines()[1:]
    assert [r.split(",")[:2] for r in rejects] == [["500", "region"], ["1701", "sale_id"]]
    loaded = {r[0]: r[2] for r in pg_rows()}
    assert len(loaded) == 1998 and loaded[1201] == Decimal("0.13")


# -- one bad, unreadable or vanished file never blocks the others ------------------------------
def _failing_open(monkeypatch: pytest.MonkeyPatch, name: str, code: int, where: str = "") -> None:
    """``os.open`` fails with ``code`` for one file name (under ``where`` if given): tests run as
    root, which reads a chmod 000 file, so unreadability is simulated at the system call."""
    real_open = os.open

    def fake(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        text = os.fsdecode(path)
        if text.endswith(name) and where in text:
            raise OSError(code, os.strerror(code), text)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.EACCES, "unreadable: Permission denied (EACCES)"),
        (errno.EIO, "unreadable: Input/output error (EIO)"),
    ],
)
def test_an_unreadable_file_is_quarantined_with_the_reason_and_the_others_load(
    inbox: Inbox, land, monkeypatch: pytest.MonkeyPatch, code: int, reason: str
) -> None:
    texts = {
        "sales_2024_w22_north.csv": csv_text(sales_rows(1, 10, "North")),
        "sales_2024_w22_south.csv": csv_text(sales_rows(101, 10, "South")),
        "sales_2024_w22_east.csv": csv_text(sales_rows(201, 10, "East")),
    }
    for name, text in texts.items():
        land(name, text)
    with monkeypatch.context() as patch:
        _failing_open(patch, "sales_2024_w22_south.csv", code)
        assert sweep()
    flags = flags_by_name(inbox)
    assert flags["sales_2024_w22_north.csv"]["status"] == doc.ARCHIVED
    assert flags["sales_2024_w22_east.csv"]["status"] == doc.ARCHIVED
    bad = flags["sales_2024_w22_south.csv"]
    assert bad["status"] == doc.QUARANTINED and reason in bad["history"][-1]["note"]
    assert kept_bytes(bad) == texts["sales_2024_w22_south.csv"].encode()  # kept whole
    assert len(pg_rows()) == 20
    assert list(inbox.paths.inbox.iterdir()) == []
    assert sweep()  # and the next sweeps are not stuck on it either


def test_a_file_that_becomes_unreadable_after_registration_is_quarantined_not_retried(
    inbox: Inbox, land, monkeypatch: pytest.MonkeyPatch
) -> None:
    land("sales_2024_w23_north.csv", csv_text(sales_rows(1, 10)))
    land("sales_2024_w23_south.csv", csv_text(sales_rows(101, 10, "South")))
    with monkeypatch.context() as patch:
        _failing_open(patch, "sales_2024_w23_south.csv", errno.EIO, where="/work/")
        assert sweep()
    flags = flags_by_name(inbox)
    bad = flags["sales_2024_w23_south.csv"]
    assert [h["to"] for h in bad["history"]] == [doc.RECEIVED, doc.QUARANTINED]
    assert "unreadable: Input/output error (EIO)" in bad["history"][-1]["note"]
    assert bad["attempts"] == 1
    assert flags["sales_2024_w23_north.csv"]["status"] == doc.ARCHIVED


def test_a_file_that_vanishes_while_being_taken_gets_no_flag_and_blocks_nothing(
    inbox: Inbox, land, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = csv_text(sales_rows(1, 10))
    land("sales_2024_w24_north.csv", good)
    going = land("sales_2024_w24_south.csv", csv_text(sales_rows(101, 10, "South")))
    real_open = os.open

    def taken_by_someone_else(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.fsdecode(path) == str(going):
            going.unlink(missing_ok=True)  # another worker took it a moment ago
        return real_open(path, flags, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "open", taken_by_someone_else)
        assert sweep()
    assert list(flags_by_name(inbox)) == ["sales_2024_w24_north.csv"]
    land("sales_2024_w24_south.csv", csv_text(sales_rows(101, 10, "South")))  # back again
    assert sweep()
    assert {f["status"] for f in inbox.ledger.list()[0]} == {doc.ARCHIVED}
    assert len(pg_rows()) == 20


# -- bounded resources -------------------------------------------------------------------------
def test_a_file_over_its_contracts_size_cap_is_quarantined_without_being_read(
    inbox: Inbox, land, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(CONTRACTS, "sales", dataclasses.replace(SALES, max_bytes=2000))
    small = csv_text(sales_rows(1, 10))
    big = csv_text(sales_rows(101, 100))
    assert len(small) < 2000 < len(big)
    land("sales_2024_w25_north.csv", small)
    land("sales_2024_w25_south.csv", big)
    read: list[int] = []
    real_validate = stages_module.clean_file  # checks and transforms in one pass

    def recording(source, *args, **kwargs):  # type: ignore[no-untyped-def]
        read.append(os.fstat(source.fileno()).st_size)
        return real_validate(source, *args, **kwargs)

    monkeypatch.setattr("pipeline.inbox.chain.clean_file", recording)
    assert sweep()
    flags = flags_by_name(inbox)
    capped = flags["sales_2024_w25_south.csv"]
    assert capped["status"] == doc.QUARANTINED
    assert f"{len(big):,} bytes: over the size cap of 2,000 bytes" in capped["history"][-1]["note"]
    assert kept_bytes(capped) == big.encode()
    assert read == [len(small)]  # the big one was never read
    assert flags["sales_2024_w25_north.csv"]["status"] == doc.ARCHIVED


# -- a hostile file system ---------------------------------------------------------------------
@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside the inbox that a link could point at: valid rows that must never load."""
    path = tmp_path / "secret.csv"
    path.write_text(csv_text(sales_rows(9001, 5)))
    return path


def test_a_symlink_swapped_in_after_the_file_was_read_is_never_followed_or_moved(
    inbox: Inbox, land, monkeypatch: pytest.MonkeyPatch, secret: Path, tmp_path: Path
) -> None:
    path = land("sales_2024_w26_north.csv", csv_text(sales_rows(1, 10)))
    real = register_module.sha256_of_handle
    swapped: list[bool] = []

    def swap_after_reading(handle):  # type: ignore[no-untyped-def]
        result = real(handle)
        if not swapped:
            swapped.append(True)
            path.rename(tmp_path / "moved-away.csv")
            path.symlink_to(secret)
        return result

    monkeypatch.setattr(register_module, "sha256_of_handle", swap_after_reading)
    secret_before = secret.read_bytes()
    assert sweep()
    (flag,) = inbox.ledger.list()[0]  # the file read was not taken under the link's name
    assert flag["status"] == doc.QUARANTINED
    assert "symbolic link to" in flag["history"][-1]["note"]
    assert Path(flag["details"]["quarantine_path"]).is_symlink()
    assert pg_rows() == [] and secret.read_bytes() == secret_before


@pytest.mark.parametrize("swap_to", ["symlink", "fifo"])
def test_an_entry_swapped_between_the_check_and_the_open_is_never_read(
    inbox: Inbox, land, monkeypatch: pytest.MonkeyPatch, secret: Path, swap_to: str
) -> None:
    path = land("sales_2024_w27_north.csv", csv_text(sales_rows(1, 10)))
    real_open = os.open

    def swap_then_open(target, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.fsdecode(target) == str(path) and path.is_file() and not path.is_symlink():
            path.unlink()
            if swap_to == "symlink":
                path.symlink_to(secret)
            else:
                os.mkfifo(path)  # a FIFO without a writer: a blocking open would hang
        return real_open(target, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", swap_then_open)
    assert sweep_within(120)
    (flag,) = inbox.ledger.list()[0]
    assert flag["status"] == doc.QUARANTINED
    note = flag["history"][-1]["note"]
    assert ("symbolic link" in note) if swap_to == "symlink" else ("not a regular file" in note)
    assert pg_rows() == []


def test_a_fifo_in_the_inbox_never_blocks_a_sweep(inbox: Inbox, land) -> None:
    os.mkfifo(inbox.paths.inbox / "sales_2024_w28_south.csv")
    land("sales_2024_w28_north.csv", csv_text(sales_rows(1, 10)))
    assert sweep_within(120)
    flags = flags_by_name(inbox)
    assert flags["sales_2024_w28_north.csv"]["status"] == doc.ARCHIVED
    fifo = flags["sales_2024_w28_south.csv"]
    assert fifo["status"] == doc.QUARANTINED and "never opened" in fifo["history"][-1]["note"]


def test_a_file_that_grows_while_it_is_read_is_taken_only_once_complete(
    inbox: Inbox, land, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = land("sales_2024_w29_north.csv", csv_text(sales_rows(1, 10)))
    real = register_module.sha256_of_handle
    grown: list[bool] = []

    def append_after_reading(handle):  # type: ignore[no-untyped-def]
        result = real(handle)
        if not grown:
            grown.append(True)
            with open(path, "a") as more:
                more.write(sales_rows(11, 1)[0] + "\n")
        return result

    monkeypatch.setattr(register_module, "sha256_of_handle", append_after_reading)
    assert sweep()
    (flag,) = inbox.ledger.list()[0]
    assert flag["status"] == doc.ARCHIVED
    assert flag["source"]["size"] == len(kept_bytes(flag))  # the checksum of the whole file
    assert len(pg_rows()) == 11


def test_a_work_file_replaced_after_registration_is_quarantined_not_loaded(
    inbox: Inbox, land
) -> None:
    path = land("sales_2024_w30_north.csv", csv_text(sales_rows(1, 10)))
    file_id = inbox.register(path)
    assert file_id is not None
    flag = inbox.ledger.get(file_id)
    work = Path(flag["source"]["path"])
    work.unlink()
    work.write_text(csv_text(sales_rows(5001, 10)))  # other rows under the registered name
    assert inbox.process(file_id) == doc.QUARANTINED
    assert "not the file registered" in inbox.ledger.get(file_id)["history"][-1]["note"]
    assert pg_rows() == []


# -- who did it --------------------------------------------------------------------------------
def test_every_flag_history_entry_names_the_host_and_pid_that_made_it(inbox: Inbox, land) -> None:
    land("sales_2024_w31_north.csv", csv_text(sales_rows(1, 5)))
    land("sales_2024_w31_south.csv", b"")  # quarantined: another road through the stages
    assert sweep()
    for flag in inbox.ledger.list()[0]:
        assert flag["history"]
        for entry in flag["history"]:
            assert (entry["host"], entry["pid"]) == (socket.gethostname(), os.getpid())
