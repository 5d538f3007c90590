from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from config.settings import load_settings
from pipeline.datasets import SALES
from pipeline.inbox import Inbox
from pipeline.postgres import ensure_marker_table, transaction

HEADER = ",".join(SALES.names)


def sales_rows(first_id: int, n: int, region: str = "North", seed: int = 1) -> list[str]:
    rng = random.Random(seed + first_id)
    rows = []
    for i in range(first_id, first_id + n):
        quantity = rng.randint(1, 5)
        price = rng.choice([9.99, 19.5, 120.0, 3.25])
        day = 1 + (i % 7)
        customer, product = rng.randint(1, 500), rng.randint(1, 50)
        amount = f"{quantity * price:.2f}"
        rows.append(f"{i},{customer},{product},{quantity},2024-01-0{day},{amount},{region}")
    return rows


@pytest.fixture
def inbox(stack: None, runtime: Path) -> Inbox:
    """A fresh inbox on the real servers: its own runtime folder, an empty sales table."""
    with transaction() as cur:
        cur.execute("DROP TABLE IF EXISTS sales.sales")
        ensure_marker_table(cur)
        cur.execute("DELETE FROM ops.load_markers WHERE target_table = 'sales.sales'")
    from flags.mirror import connect

    connect(load_settings().redis).flushdb()
    return Inbox.from_settings()


@pytest.fixture
def land(inbox: Inbox) -> Callable[..., Path]:
    """Put a file into the inbox as a finished delivery (old enough to be picked up)."""

    def put(name: str | bytes, content: bytes | str, age_s: float = 60) -> Path:
        raw_name = name if isinstance(name, bytes) else os.fsencode(name)
        path = Path(os.fsdecode(os.fsencode(inbox.paths.inbox) + b"/" + raw_name))
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
        old = path.stat().st_mtime - age_s
        os.utime(path, (old, old))
        return path

    return put


def csv_text(rows: list[str]) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def pg_rows(where: str = "TRUE") -> list[tuple]:
    with transaction() as cur:
        cur.execute("SELECT to_regclass('sales.sales') IS NOT NULL")
        if not cur.fetchone()[0]:
            return []
        cur.execute(
            "SELECT sale_id, region, sale_amount, file_id FROM sales.sales"
            f" WHERE {where} ORDER BY sale_id"
        )
        return cur.fetchall()
