"""Stages whose effects are all durable before one flag write are recorded in that one write
(``advance_many``): the chain records validated + transformed after its one pass over a file, and
loaded + archived after the commit and the archive copy. The flag reads as if each stage had been
written on its own, in one revision (the Redis mirror orders writes by revision)."""

from __future__ import annotations

import pytest

from flags import document as doc
from flags.store import validate
from tests.flags.conftest import sha

ARGS = {"dataset": "sales", "path": "/inbox/a.csv", "name": "a.csv", "size": 9, "sha256": sha("x")}


def test_two_stages_in_one_write_read_like_two_writes() -> None:
    flag = doc.new_flag(**ARGS)
    one = doc.advance_many(
        flag,
        [
            (doc.VALIDATED, {"rows_in": 10, "rows_out": 9, "rows_rejected": 1, "note": "1 bad"}),
            (doc.TRANSFORMED, {"rows_in": 9, "rows_out": 8, "rows_rejected": 0}),
        ],
    )
    two = doc.advance(
        doc.advance(flag, doc.VALIDATED, rows_in=10, rows_out=9, rows_rejected=1, note="1 bad"),
        doc.TRANSFORMED,
        rows_in=9,
        rows_out=8,
        rows_rejected=0,
    )
    validate(one)
    assert one["revision"] == flag["revision"] + 1 and two["revision"] == flag["revision"] + 2
    assert one["status"] == two["status"] == doc.TRANSFORMED
    assert [e["to"] for e in one["history"]] == [e["to"] for e in two["history"]]
    assert one["history"][1]["note"] == "1 bad"
    for stage in (doc.VALIDATED, doc.TRANSFORMED):
        drop = {"at"}
        assert {k: v for k, v in one["stages"][stage].items() if k not in drop} == {
            k: v for k, v in two["stages"][stage].items() if k not in drop
        }
    assert flag["status"] == doc.RECEIVED and len(flag["history"]) == 1  # never changed in place


def test_each_transition_is_checked() -> None:
    flag = doc.new_flag(**ARGS)
    with pytest.raises(doc.IllegalTransition, match="received -> loaded"):
        doc.advance_many(flag, [(doc.LOADED, {}), (doc.ARCHIVED, {})])
    with pytest.raises(doc.FlagError, match="at least one"):
        doc.advance_many(flag, [])
