"""Work files between tasks: typed Parquet, written once, atomically, for the owner only.

A daily flow's work files live under ``<runtime>/<flow>/<date>/``. Parquet keeps each column's
type (integers stay integers, strings stay strings, an empty string stays empty, dates stay
dates), so a reader never restates dtypes the writer already knew.

A work file also records, in its Parquet metadata, the inputs of the period it was computed from
and the forced run that wrote it (``pipeline.core.periods``): ``WorkFileTarget`` exists only
while those still hold, so late data recomputes the chain from the sources, not from a stale
file.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable
from typing import Any

import luigi
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from config.settings import load_settings
from pipeline.core.faults import crash_point
from pipeline.core.files import OWNER_ONLY, atomic_write
from pipeline.core.periods import Inputs, digest

_META = b"pipeline.inputs"


def day_target(flow: str, date: dt.date, name: str) -> luigi.LocalTarget:
    """A daily flow's work file: ``<runtime>/<flow>/<date>/<name>`` (``name`` ends .parquet)."""
    return luigi.LocalTarget(str(load_settings().paths.runtime / flow / date.isoformat() / name))


class WorkFileTarget(luigi.LocalTarget):
    """A work file that exists only while it was computed from the period's inputs as they are
    now (``current()``), and, in a forced run, by that run (``token``)."""

    def __init__(self, path: str, current: Callable[[], Inputs], token: str = "") -> None:
        super().__init__(path)
        self.current = current
        self.token = token

    def exists(self) -> bool:
        if not super().exists():
            return False
        recorded = inputs_of(self)
        if recorded is None:
            return False
        inputs, token = recorded
        return digest(inputs) == digest(self.current()) and (not self.token or token == self.token)


def day_work_file(
    flow: str, date: dt.date, name: str, current: Callable[[], Inputs], token: str = ""
) -> WorkFileTarget:
    """``day_target`` that knows what it was computed from."""
    return WorkFileTarget(day_target(flow, date, name).path, current, token)


def write_frame(
    frame: pd.DataFrame,
    target: luigi.LocalTarget,
    inputs: Inputs | None = None,
    token: str = "",
) -> None:
    """A frame as Parquet, atomically and durably, readable by the owner only (work files may
    hold personal data), with the period's ``inputs`` and the forced run's ``token`` in its
    metadata."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if inputs is not None:
        meta = json.dumps({"inputs": inputs, "token": token}, sort_keys=True, default=str)
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META: meta})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    atomic_write(target.path, buffer.getvalue(), mode=OWNER_ONLY)
    crash_point("workfile.after_write")


def inputs_of(target: luigi.LocalTarget | str) -> tuple[Inputs, str] | None:
    """The inputs and forced-run token a work file was written with (None: not recorded)."""
    path = target.path if isinstance(target, luigi.LocalTarget) else target
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid):
        return None
    raw = meta.get(_META)
    if raw is None:
        return None
    found: dict[str, Any] = json.loads(raw)
    return found["inputs"], found.get("token", "")


def read_frame(target: luigi.LocalTarget | str) -> pd.DataFrame:
    """A work file written by ``write_frame``, with the types it was written with."""
    path = target.path if isinstance(target, luigi.LocalTarget) else target
    return pd.read_parquet(path)
