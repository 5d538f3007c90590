"""Pure transforms: typed, checked rows in, rows ready to load out (pandas only, no I/O).

Each dataset contract names its transform here (``Contract.transform``). A file is transformed a
chunk at a time (bounded memory): ``SeenKeys`` carries the keys already passed on from one chunk
to the next, so "the first occurrence wins" holds for the whole file. Values stay exact: integers
as integers, decimals as decimals at the contract's scale (never through float).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.inbox.contract import Column, Contract
from pipeline.inbox.validate import arrow_type


@dataclass(frozen=True)
class Transformed:
    frame: pd.DataFrame
    duplicates_removed: int


class SeenKeys:
    """The keys of the rows a file has passed on so far. Exact, and small: a single integer key
    is kept as sorted int64 arrays (8 bytes a row; merged pairwise as they grow, so a lookup
    searches a few arrays); any other key as tuples."""

    def __init__(self, key: tuple[str, ...]) -> None:
        self.key = key
        self._runs: list[np.ndarray] = []
        self._tuples: set[tuple[object, ...]] = set()

    def first_seen(self, frame: pd.DataFrame) -> np.ndarray:
        """Per row, True when its key was not seen before (in earlier chunks or above it in this
        one); those keys are remembered."""
        column = frame[self.key[0]] if len(self.key) == 1 else None
        if (
            column is not None
            and pd.api.types.is_integer_dtype(column.dtype)
            and not column.isna().any()
        ):
            return self._first_ints(column.to_numpy(dtype=np.int64))
        first = np.ones(len(frame), dtype=bool)
        for i, key in enumerate(frame[list(self.key)].itertuples(index=False, name=None)):
            if key in self._tuples:
                first[i] = False
            else:
                self._tuples.add(key)
        return first

    def _first_ints(self, keys: np.ndarray) -> np.ndarray:
        first = ~pd.Series(keys).duplicated(keep="first").to_numpy()
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            first &= run[at] != keys
        self._runs.append(np.sort(keys[first]))
        # A binary counter of runs: a run is merged with the one before while it is as large.
        while len(self._runs) > 1 and len(self._runs[-1]) >= len(self._runs[-2]):
            last = self._runs.pop()
            merged = np.concatenate([self._runs.pop(), last])
            merged.sort(kind="stable")  # two sorted runs: a linear merge
            self._runs.append(merged)
        return first


def drop_duplicate_keys(
    frame: pd.DataFrame, key: tuple[str, ...], seen: SeenKeys | None = None
) -> Transformed:
    """One row per key: the first occurrence in the file wins (files are append-only extracts,
    so a repeated key is a re-sent row, not a correction). ``seen`` carries the keys of the
    file's earlier chunks."""
    first = (seen or SeenKeys(key)).first_seen(frame)
    deduped = frame[first]
    return Transformed(deduped, len(frame) - len(deduped))


def to_scale(values: pd.Series, column: Column) -> pd.Series:
    """A decimal column at the contract's scale, exactly (half-up: a tie away from zero); a
    column that is not decimal is refused: amounts never go through float."""
    dtype = values.dtype
    if not (isinstance(dtype, pd.ArrowDtype) and pa.types.is_decimal(dtype.pyarrow_dtype)):
        raise TypeError(f"{column.name}: {dtype} is not a decimal type (values must stay exact)")
    target = arrow_type(column)
    if dtype.pyarrow_dtype == target:
        return values
    array = pa.array(values)
    if dtype.pyarrow_dtype.scale > column.scale:
        array = pc.round(array, ndigits=column.scale, round_mode="half_towards_infinity")
    return pd.Series(
        pd.arrays.ArrowExtensionArray(pc.cast(array, target)), index=values.index, name=values.name
    )


def identity(frame: pd.DataFrame, contract: Contract, seen: SeenKeys | None = None) -> Transformed:
    return drop_duplicate_keys(frame, contract.key, seen)


def transform_sales(
    frame: pd.DataFrame, contract: Contract, seen: SeenKeys | None = None
) -> Transformed:
    """Sales rows: one per sale_id, amounts exactly in cents, dates as dates."""
    result = drop_duplicate_keys(frame, contract.key, seen)
    out = result.frame.copy()
    out["sale_amount"] = to_scale(out["sale_amount"], contract.column("sale_amount"))
    out["sale_date"] = pd.to_datetime(out["sale_date"]).astype("date32[pyarrow]")
    return Transformed(out, result.duplicates_removed)


TRANSFORMS: dict[str, Callable[[pd.DataFrame, Contract, SeenKeys | None], Transformed]] = {
    "identity": identity,
    "transform_sales": transform_sales,
}


def transform(frame: pd.DataFrame, contract: Contract, seen: SeenKeys | None = None) -> Transformed:
    """Transform one chunk of a file (``seen``: the same ``SeenKeys`` for all of its chunks)."""
    return TRANSFORMS[contract.transform](frame, contract, seen)
