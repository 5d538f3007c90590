"""Luigi targets on the flags, the Redis marker target, and the ``flags`` command."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import fakeredis
import luigi
import pytest

from flags import document as doc
from flags.cli import main
from flags.ledger import Ledger
from flags.targets import FlagTarget, RedisMarkerTarget


def test_flag_target_answers_from_the_json_flag(ledger: Ledger, fake_redis, make_flag_args) -> None:
    assert not FlagTarget("0" * 24, doc.RECEIVED, ledger).exists()
    flag = ledger.register(**make_flag_args())
    fid = flag["file_id"]
    assert FlagTarget(fid, doc.RECEIVED, ledger).exists()
    assert not FlagTarget(fid, doc.VALIDATED, ledger).exists()
    ledger.advance(fid, doc.VALIDATED)
    fake_redis.flushall()  # Redis forgetting everything changes no answer
    assert FlagTarget(fid, doc.VALIDATED, ledger).exists()
    with pytest.raises(doc.FlagError, match="unknown stage"):
        FlagTarget(fid, "shipped", ledger)


class _Stage(luigi.Task):
    """A file task of the shape the inbox uses: its output is the flag's stage."""

    file_id = luigi.Parameter()
    root = luigi.Parameter()
    runs: list[str] = []

    def output(self) -> FlagTarget:
        return FlagTarget(self.file_id, doc.VALIDATED, Ledger.at(Path(self.root), None))

    def run(self) -> None:
        _Stage.runs.append(self.file_id)
        Ledger.at(Path(self.root), None).advance(self.file_id, doc.VALIDATED, rows_in=3)


def test_a_file_task_is_skipped_when_done_and_redone_when_not(
    tmp_path: Path, make_flag_args
) -> None:
    ledger = Ledger.at(tmp_path, None)
    fid = ledger.register(**make_flag_args())["file_id"]
    task = _Stage(file_id=fid, root=str(tmp_path))
    assert luigi.build([task], local_scheduler=True, log_level="WARNING")
    assert luigi.build(
        [_Stage(file_id=fid, root=str(tmp_path))], local_scheduler=True, log_level="WARNING"
    )
    assert _Stage.runs == [fid]  # the second run skipped it
    ledger.fail(fid, stage="transformed", error=RuntimeError("x"))
    ledger.reset(fid, doc.RECEIVED, note="redo validation")
    assert luigi.build(
        [_Stage(file_id=fid, root=str(tmp_path))], local_scheduler=True, log_level="WARNING"
    )
    assert _Stage.runs == [fid, fid]


def test_redis_marker_target_expires() -> None:
    client = fakeredis.FakeRedis()
    marker = RedisMarkerTarget(
        "report:feed:2024-01-01", ttl=dt.timedelta(milliseconds=300), client=client
    )
    assert not marker.exists()
    marker.touch()
    assert marker.exists()
    left = marker.ttl_left()
    assert left is not None and left <= dt.timedelta(milliseconds=300)
    time.sleep(0.4)
    assert not marker.exists()
    forever = RedisMarkerTarget("sent", client=client)
    forever.touch()
    assert forever.exists() and forever.ttl_left() is None
    forever.remove()
    assert not forever.exists()
    with pytest.raises(ValueError, match="no spaces"):
        RedisMarkerTarget("a b", client=client)


def test_cli_list_show_history_retry_check_reindex(
    ledger: Ledger, fake_redis, make_flag_args, capsys: pytest.CaptureFixture[str]
) -> None:
    fid = ledger.register(**make_flag_args(name="sales_w01.csv"))["file_id"]
    ledger.advance(fid, doc.VALIDATED, rows_in=5, rows_out=4, rows_rejected=1)
    ledger.fail(fid, stage="transformed", error=ValueError("bad date in row 3"))

    assert main(["list", "--status", "failed"], ledger) == 0
    out, err = capsys.readouterr()
    assert fid in out and "sales_w01.csv" in out and "ValueError at transformed" in out
    assert "1 flag(s)" in err

    assert main(["list", "--json", "--since", "1h"], ledger) == 0
    assert [f["file_id"] for f in json.loads(capsys.readouterr().out)] == [fid]

    assert main(["show", fid], ledger) == 0
    assert json.loads(capsys.readouterr().out)["last_error"]["message"] == "bad date in row 3"

    assert main(["retry", fid, "--reason", "parser fixed"], ledger) == 0
    assert "back to validated (attempt 2)" in capsys.readouterr().out

    assert main(["history", fid], ledger) == 0
    out = capsys.readouterr().out
    assert [line.split()[2] for line in out.splitlines()[1:]] == ["transition"] * 3 + ["retry"]
    assert "parser fixed" in out

    assert main(["check"], ledger) == 0
    assert "in step" in capsys.readouterr().out
    fake_redis.flushall()
    assert main(["check"], ledger) == 1
    assert "missing in Redis: 1" in capsys.readouterr().out
    assert main(["reindex"], ledger) == 0
    assert "mirrored 1 flag(s)" in capsys.readouterr().out
    assert main(["check"], ledger) == 0

    assert main(["counts"], ledger) == 0
    assert "validated" in capsys.readouterr().out


def test_cli_errors_are_one_line(ledger: Ledger, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "0" * 24], ledger) == 2
    assert "no flag" in capsys.readouterr().err
    assert main(["show", "../etc"], ledger) == 2
    assert "not a flag id" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["list", "--since", "yesterday-ish"], ledger)
    assert "not a time" in capsys.readouterr().err
