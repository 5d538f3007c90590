"""Pure transforms: typed, checked rows in, rows ready to load out (pandas only, no I/O).

Each dataset contract names its transform here (``Contract.transform``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from pipeline.inbox.contract import Contract


@dataclass(frozen=True)
class Transformed:
    frame: pd.DataFrame
    duplicates_removed: int


def drop_duplicate_keys(frame: pd.DataFrame, key: tuple[str, ...]) -> Transformed:
    """One row per key: the first occurrence in the file wins (files are append-only extracts,
    so a repeated key is a re-sent row, not a correction)."""
    deduped = frame.drop_duplicates(subset=list(key), keep="first")
    return Transformed(deduped, len(frame) - len(deduped))


def identity(frame: pd.DataFrame, contract: Contract) -> Transformed:
    return drop_duplicate_keys(frame, contract.key)


def transform_sales(frame: pd.DataFrame, contract: Contract) -> Transformed:
    """Sales rows: one per sale_id, amounts to cents, dates as dates."""
    result = drop_duplicate_keys(frame, contract.key)
    out = result.frame.copy()
    out["sale_amount"] = out["sale_amount"].round(2)
    out["sale_date"] = pd.to_datetime(out["sale_date"]).astype("date32[pyarrow]")
    return Transformed(out, result.duplicates_removed)


TRANSFORMS: dict[str, Callable[[pd.DataFrame, Contract], Transformed]] = {
    "identity": identity,
    "transform_sales": transform_sales,
}


def transform(frame: pd.DataFrame, contract: Contract) -> Transformed:
    return TRANSFORMS[contract.transform](frame, contract)
