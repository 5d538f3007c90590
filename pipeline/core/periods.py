"""Completeness decides completion: a daily or weekly output records what it was computed from.

A flow describes a period's inputs as a small JSON-able mapping of watermarks, read from the
sources before the data is (``{"feed_actions": {"rows": 812345, "max_time": "..."}}``, or the
files loaded for a sales week with their row counts). An output records the inputs it was
computed from (``ops.period_inputs`` for tables, the Parquet metadata for work files); it is
complete while they equal the sources' now. A late file, a corrected re-delivery or late events
change the watermarks, so ``complete()`` turns false and the next run recomputes the period,
replacing it. Reading the watermarks *before* the data makes a change that lands in between
show up as a change at the next run (recomputed once more), never as a change missed.

``--force`` (every daily and weekly wrapper) gives the run a token: a forced task is complete
only once this very run has recomputed it (the token is recorded with the inputs), whichever
worker process ran it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import luigi

from pipeline.systems import postgres
from pipeline.systems.postgres import transaction

Inputs = dict[str, Any]


def digest(inputs: Inputs) -> str:
    """A short, stable fingerprint of a period's inputs."""
    text = json.dumps(inputs, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def new_token() -> str:
    """A forced run's token (``--force``)."""
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Record:
    """What an output was last computed from."""

    inputs: Inputs
    digest: str
    previous: Inputs | None
    force_token: str
    rows: int

    def current(self, inputs: Inputs, token: str = "") -> bool:
        """Computed from exactly ``inputs`` (and by the forced run ``token``, if forced)."""
        return self.digest == digest(inputs) and (not token or self.force_token == token)


def ensure_table() -> None:
    """``ops.period_inputs`` (once per process and database)."""
    postgres.ensure_table_once("ops.period_inputs", "ops/create_period_inputs")


def read(flow: str, output: str, period: str) -> Record | None:
    ensure_table()
    with transaction() as cur:
        postgres.run(
            cur, "ops/period_inputs_get", {"flow": flow, "output": output, "period": period}
        )
        row = cur.fetchone()
    if row is None:
        return None
    return Record(inputs=row[0], digest=row[1], previous=row[2], force_token=row[3], rows=row[4])


def write(
    cur: Any,
    flow: str,
    output: str,
    period: str,
    inputs: Inputs,
    token: str = "",
    rows: int = 0,
) -> None:
    """Record that ``output`` for ``period`` now holds what ``inputs`` gave, in the caller's
    transaction (the one writing the output, when the output is in PostgreSQL)."""
    postgres.run(
        cur,
        "ops/period_inputs_write",
        {
            "flow": flow,
            "output": output,
            "period": period,
            "inputs": json.dumps(inputs, sort_keys=True, default=str),
            "digest": digest(inputs),
            "force_token": token,
            "rows_out": rows,
        },
    )


def write_now(
    flow: str, output: str, period: str, inputs: Inputs, token: str = "", rows: int = 0
) -> None:
    """``write`` in a transaction of its own (an output in ClickHouse, right after its swap: a
    crash in between recomputes the period, which gives the same table)."""
    ensure_table()
    with transaction() as cur:
        write(cur, flow, output, period, inputs, token, rows)


class InputsTarget(luigi.Target):
    """Exists while ``output`` for ``period`` was computed from the sources as they are now
    (``current()`` reads their watermarks), and, in a forced run, by that run."""

    def __init__(
        self,
        flow: str,
        output: str,
        period: str,
        current: Callable[[], Inputs],
        token: str = "",
    ) -> None:
        self.flow, self.output, self.period = flow, output, period
        self.current = current
        self.token = token

    def record(self) -> Record | None:
        return read(self.flow, self.output, self.period)

    def exists(self) -> bool:
        record = self.record()
        return record is not None and record.current(self.current(), self.token)


def changes(before: Inputs | None, after: Inputs) -> list[str]:
    """What changed between two sets of watermarks, one line per source (none when nothing
    did): ``feed_actions: rows 812,345 -> 812,400``."""
    if before is None:
        return []
    lines = []
    for source in sorted(set(before) | set(after)):
        old, new = before.get(source), after.get(source)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            parts = [
                f"{field} {_fmt(old.get(field))} -> {_fmt(new.get(field))}"
                for field in sorted(set(old) | set(new))
                if old.get(field) != new.get(field)
            ]
            lines.append(f"{source}: " + ", ".join(parts))
        else:
            lines.append(f"{source}: {_fmt(old)} -> {_fmt(new)}")
    return lines


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
