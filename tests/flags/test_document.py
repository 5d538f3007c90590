"""The flag document's rules: transitions, failures, retries, resets, and the schema."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flags import document as doc
from flags.store import validate
from tests.flags.conftest import sha

ARGS = {"dataset": "sales", "path": "/inbox/a.csv", "name": "a.csv", "size": 9, "sha256": sha("x")}


def at_status(status: str) -> dict:
    """A flag that has reached ``status`` by the normal road."""
    flag = doc.new_flag(**ARGS)
    road = {
        doc.RECEIVED: [],
        doc.VALIDATED: [doc.VALIDATED],
        doc.TRANSFORMED: [doc.VALIDATED, doc.TRANSFORMED],
        doc.LOADED: [doc.VALIDATED, doc.TRANSFORMED, doc.LOADED],
        doc.ARCHIVED: [doc.VALIDATED, doc.TRANSFORMED, doc.LOADED, doc.ARCHIVED],
        doc.QUARANTINED: [doc.QUARANTINED],
        doc.DUPLICATE: [doc.DUPLICATE],
    }
    if status == doc.FAILED:
        return doc.fail(flag, stage="validated", error_type="ValueError", message="bad row")
    for step in road[status]:
        flag = doc.advance(flag, step)
    return flag


def test_a_new_flag_is_received_valid_and_named_by_content() -> None:
    flag = doc.new_flag(**ARGS)
    validate(flag)
    assert flag["status"] == doc.RECEIVED
    assert flag["file_id"] == sha("x")[:24]
    assert flag["revision"] == 1 and len(flag["history"]) == 1
    renamed = doc.new_flag(**{**ARGS, "name": "other.csv", "path": "/x/other.csv"})
    assert renamed["file_id"] == flag["file_id"]
    assert doc.file_id_for(sha("x"), arrival=2) == sha("x")[:24] + "-2"


PAIRS = list(itertools.product(doc.STATUSES, doc.STATUSES))


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_transition_is_allowed_or_refused_by_the_table(old: str, new: str) -> None:
    flag = at_status(old)
    allowed = new in doc.TRANSITIONS[old]
    if new == doc.FAILED:
        if allowed:
            failed = doc.fail(flag, stage="loaded", error_type="IOError", message="disk")
            validate(failed)
            assert failed["status"] == doc.FAILED
            assert failed["last_error"]["stage"] == "loaded"
        else:
            with pytest.raises(doc.IllegalTransition, match=f"cannot fail from {old}"):
                doc.fail(flag, stage="loaded", error_type="IOError", message="disk")
        return
    if allowed:
        moved = doc.advance(flag, new, rows_in=10, rows_out=9, rows_rejected=1, duration_s=0.5)
        validate(moved)
        assert moved["status"] == new
        assert moved["stages"][new]["rows_rejected"] == 1
        assert moved["history"][-1] == {**moved["history"][-1], "from": old, "to": new}
        assert moved["revision"] == flag["revision"] + 1
        assert flag["status"] == old  # operations never change their input
    else:
        with pytest.raises(doc.IllegalTransition, match=f"{old} -> {new} is not allowed"):
            doc.advance(flag, new)


def test_retry_goes_back_to_the_last_good_stage() -> None:
    flag = at_status(doc.TRANSFORMED)
    failed = doc.fail(flag, stage="loaded", error_type="OperationalError", message="server closed")
    retried = doc.retry(failed, note="PostgreSQL is back")
    validate(retried)
    assert retried["status"] == doc.TRANSFORMED
    assert retried["attempts"] == 2
    assert retried["last_error"] is not None  # kept until the stage succeeds
    assert doc.advance(retried, doc.LOADED)["last_error"] is None
    assert [h["event"] for h in retried["history"]][-2:] == ["transition", "retry"]
    with pytest.raises(doc.FlagError, match="only a failed file can be retried"):
        doc.retry(retried)


def test_reset_is_explicit_recorded_and_drops_later_stages() -> None:
    flag = at_status(doc.LOADED)
    with pytest.raises(doc.FlagError, match="needs a reason"):
        doc.reset(flag, doc.VALIDATED, note="")
    back = doc.reset(flag, doc.VALIDATED, note="transform fixed, redo")
    validate(back)
    assert back["status"] == doc.VALIDATED
    assert set(back["stages"]) == {doc.RECEIVED, doc.VALIDATED}
    assert back["history"][-1]["event"] == "reset"
    assert back["history"][-1]["note"] == "transform fixed, redo"
    quarantined = at_status(doc.QUARANTINED)
    again = doc.reset(quarantined, doc.RECEIVED, note="contract relaxed")
    assert again["status"] == doc.RECEIVED and doc.QUARANTINED not in again["stages"]
    with pytest.raises(doc.FlagError, match="never reached it"):
        doc.reset(at_status(doc.RECEIVED), doc.LOADED, note="x")


def test_reached_counts_settled_files_as_done() -> None:
    assert doc.reached(at_status(doc.TRANSFORMED), doc.VALIDATED)
    assert not doc.reached(at_status(doc.TRANSFORMED), doc.LOADED)
    assert doc.reached(at_status(doc.DUPLICATE), doc.LOADED)
    assert doc.reached(at_status(doc.QUARANTINED), doc.ARCHIVED)
    assert not doc.reached(at_status(doc.FAILED), doc.VALIDATED)
    with pytest.raises(doc.FlagError, match="unknown stage"):
        doc.reached(at_status(doc.RECEIVED), "shipped")


def test_duplicates_name_their_original_and_details_are_recorded() -> None:
    dup = doc.mark_duplicate(doc.new_flag(**{**ARGS}, arrival=1), sha("x")[:24])
    dup = doc.annotate(dup, "archive_path", "/archive/2024/01/02/a.csv.gz")
    validate(dup)
    assert dup["duplicate_of"] == sha("x")[:24]
    assert dup["details"]["archive_path"].endswith(".gz")
    assert dup["status"] == doc.DUPLICATE
    with pytest.raises(doc.FlagError, match="snake_case"):
        doc.annotate(dup, "Bad Key", 1)


def test_schema_rejects_what_the_rules_never_produce() -> None:
    flag = doc.new_flag(**ARGS)
    for broken in (
        {**flag, "status": "shipped"},
        {**flag, "file_id": "../../etc/passwd"},
        {**flag, "attempts": 0},
        {**flag, "extra": 1},
        {**flag, "source": {**flag["source"], "sha256": "nothex"}},
    ):
        with pytest.raises(doc.FlagError, match="breaks the schema"):
            validate(broken)


def test_huge_error_messages_are_cut() -> None:
    failed = doc.fail(
        at_status(doc.RECEIVED), stage="validated", error_type="E", message="x" * 10**6
    )
    validate(failed)
    assert len(failed["last_error"]["message"]) == doc.MAX_MESSAGE


OPS = st.sampled_from(["advance", "fail", "retry", "annotate", "reset"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(OPS, st.sampled_from(doc.STATUSES)), max_size=25))
def test_any_sequence_of_operations_keeps_a_valid_consistent_document(steps) -> None:
    flag = doc.new_flag(**ARGS, at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    for op, status in steps:
        try:
            if op == "advance":
                flag = doc.advance(flag, status)
            elif op == "fail":
                flag = doc.fail(flag, stage=status, error_type="E", message="m")
            elif op == "retry":
                flag = doc.retry(flag)
            elif op == "annotate":
                flag = doc.annotate(flag, "seen", status)
            else:
                flag = doc.reset(flag, status, note="test")
        except doc.FlagError:
            continue
        validate(flag)
        assert flag["revision"] == len(flag["history"])
        assert flag["history"][-1]["to"] == flag["status"]
        if flag["status"] in doc.STAGES:
            assert doc.last_good_stage(flag) == flag["status"]


def test_every_history_entry_names_the_host_and_process_that_made_it() -> None:
    import os
    import socket

    flag = at_status(doc.ARCHIVED)
    flag = doc.annotate(flag, "notified", True)
    failed = doc.retry(at_status(doc.FAILED), note="again")
    reset = doc.reset(at_status(doc.LOADED), doc.VALIDATED, note="redo")
    for document in (flag, failed, reset):
        validate(document)
        for entry in document["history"]:
            assert entry["host"] == socket.gethostname() and entry["pid"] == os.getpid()


def test_a_flag_written_before_entries_named_their_maker_still_reads() -> None:
    flag = at_status(doc.VALIDATED)
    for entry in flag["history"]:
        del entry["host"], entry["pid"]
    validate(flag)
    with pytest.raises(doc.FlagError, match="pid"):
        validate({**flag, "history": [{**flag["history"][0], "pid": "me"}]})
