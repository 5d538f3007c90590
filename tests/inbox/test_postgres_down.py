"""PostgreSQL stopped in the middle of a run: an outage is not the file's fault. The sweep stops
with a non-zero exit and spends no attempt; once PostgreSQL is back the next sweep finishes the
file with no manual step (exact rows, no duplicates)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import luigi
import pytest

from config.settings import load_settings
from flags import document as doc
from pipeline.inbox.chain import Inbox
from pipeline.inbox.tasks import ProcessInbox
from pipeline.systems.redis import connect
from stack.servers import Postgres
from tests.fixtures.inbox import csv_text, sales_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def private_postgres(
    stack: None, runtime: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Postgres]:
    monkeypatch.setenv("PIPELINE_STACK_DIR", str(tmp_path / "stack"))
    monkeypatch.setenv("PIPELINE_PG_PORT", "25433")
    monkeypatch.setenv("PIPELINE_PG_DATABASE", "pipeline")
    server = Postgres(load_settings())
    server.start()
    connect(load_settings().redis).flushdb()
    yield server
    server.stop()


def rows(server: Postgres) -> list[str]:
    out = server.psql("SELECT sale_id FROM sales.sales ORDER BY sale_id", database="pipeline")
    return out.split()


def test_postgres_stopped_mid_run(
    private_postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = Inbox.from_settings()
    for name, first in (("sales_2024_w30_north.csv", 1), ("sales_2024_w30_south.csv", 1001)):
        path = inbox.paths.inbox / name
        path.write_text(csv_text(sales_rows(first, 30)))
    real_load_and_archive = Inbox._load_and_archive
    archived: list[str] = []

    def archive_then_stop_postgres(self: Inbox, flag: dict, began: float) -> None:
        real_load_and_archive(self, flag, began)
        archived.append(flag["file_id"])
        if len(archived) == 1:
            private_postgres.stop()  # PostgreSQL goes away between two files

    with monkeypatch.context() as patch:
        import pipeline.inbox.chain as module

        patch.setitem(module.STEPS, doc.TRANSFORMED, archive_then_stop_postgres)
        assert not luigi.build(
            [ProcessInbox(min_age_s=0)], local_scheduler=True, log_level="WARNING"
        )
    flags = {f["status"]: f for f in inbox.ledger.list()[0]}
    assert set(flags) == {doc.ARCHIVED, doc.TRANSFORMED}  # the second waits where it was
    waiting = flags[doc.TRANSFORMED]
    assert waiting["attempts"] == 1 and waiting.get("last_error") is None  # its first, unspent

    # Still down: the next sweep stops before touching any file, again spending nothing.
    assert not luigi.build([ProcessInbox(min_age_s=0)], local_scheduler=True, log_level="WARNING")
    assert inbox.ledger.get(waiting["file_id"])["attempts"] == 1

    private_postgres.start()
    assert luigi.build([ProcessInbox(min_age_s=0)], local_scheduler=True, log_level="WARNING")
    assert {f["status"] for f in inbox.ledger.list()[0]} == {doc.ARCHIVED}
    assert rows(private_postgres) == [str(i) for i in [*range(1, 31), *range(1001, 1031)]]
