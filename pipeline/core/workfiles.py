"""Work files between tasks: typed Parquet, written once, atomically, for the owner only.

A daily flow's work files live under ``<runtime>/<flow>/<date>/``. Parquet keeps each column's
type (integers stay integers, strings stay strings, an empty string stays empty, dates stay
dates), so a reader never restates dtypes the writer already knew.
"""

from __future__ import annotations

import datetime as dt
import io

import luigi
import pandas as pd

from config.settings import load_settings
from pipeline.core.files import OWNER_ONLY, atomic_write


def day_target(flow: str, date: dt.date, name: str) -> luigi.LocalTarget:
    """A daily flow's work file: ``<runtime>/<flow>/<date>/<name>`` (``name`` ends .parquet)."""
    return luigi.LocalTarget(str(load_settings().paths.runtime / flow / date.isoformat() / name))


def write_frame(frame: pd.DataFrame, target: luigi.LocalTarget) -> None:
    """A frame as Parquet, atomically and durably, readable by the owner only (work files may
    hold personal data)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write(target.path, buffer.getvalue(), mode=OWNER_ONLY)


def read_frame(target: luigi.LocalTarget | str) -> pd.DataFrame:
    """A work file written by ``write_frame``, with the types it was written with."""
    path = target.path if isinstance(target, luigi.LocalTarget) else target
    return pd.read_parquet(path)
