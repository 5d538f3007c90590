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

    def first_seen_ints(self, table: pa.Table) -> np.ndarray | None:
        """``first_seen`` for rows in Arrow when the key is one integer column without a null
        (the same runs as a pandas chunk's, so the two kinds of chunk mix in one file); None
        otherwise (use ``first_seen`` on the pandas rows)."""
        if len(self.key) != 1:
            return None
        column = table.column(self.key[0])
        if not pa.types.is_integer(column.type) or column.null_count:
            return None
        return self._first_ints(column.to_numpy().astype(np.int64, copy=False))

    def _first_ints(self, keys: np.ndarray) -> np.ndarray:
        first = ~pd.Series(keys).duplicated(keep="first").to_numpy()
        for run in self._runs:
            at = np.minimum(np.searchsorted(run, keys), len(run) - 1)
            first &= run[at] != keys
        if first.any():  # a chunk of re-sent rows only adds nothing (an empty run breaks lookups)
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


# -- the same transforms on Arrow tables (the validation's fast path hands its rows over in Arrow:
# no pandas on the way to COPY). Each gives exactly the rows and types of its pandas twin (a
# property test holds them equal); None means "no Arrow form here: use the pandas one".
@dataclass(frozen=True)
class TransformedTable:
    table: pa.Table
    duplicates_removed: int


def scale_array(values: pa.ChunkedArray, column: Column) -> pa.ChunkedArray:
    """``to_scale`` on an Arrow decimal column: exactly (half-up), never through float."""
    if not pa.types.is_decimal(values.type):
        raise TypeError(
            f"{column.name}: {values.type} is not a decimal type (values must stay exact)"
        )
    target = arrow_type(column)
    if values.type == target:
        return values
    if values.type.scale > column.scale:
        values = pc.round(values, ndigits=column.scale, round_mode="half_towards_infinity")
    return pc.cast(values, target)


def _drop_duplicate_keys_arrow(
    table: pa.Table, contract: Contract, seen: SeenKeys
) -> TransformedTable | None:
    first = seen.first_seen_ints(table)
    if first is None:
        return None
    kept = table if first.all() else table.filter(pa.array(first))
    return TransformedTable(kept, table.num_rows - kept.num_rows)


def identity_arrow(table: pa.Table, contract: Contract, seen: SeenKeys) -> TransformedTable | None:
    return _drop_duplicate_keys_arrow(table, contract, seen)


def transform_sales_arrow(
    table: pa.Table, contract: Contract, seen: SeenKeys
) -> TransformedTable | None:
    """``transform_sales`` in Arrow: one row per sale_id, amounts exactly in cents, dates as
    dates."""
    result = _drop_duplicate_keys_arrow(table, contract, seen)
    if result is None:
        return None
    out = result.table
    at = out.schema.get_field_index("sale_amount")
    out = out.set_column(
        at, "sale_amount", scale_array(out.column(at), contract.column("sale_amount"))
    )
    at = out.schema.get_field_index("sale_date")
    if out.schema.field(at).type != pa.date32():
        out = out.set_column(at, "sale_date", pc.cast(out.column(at), pa.date32()))
    return TransformedTable(out, result.duplicates_removed)


ARROW_TRANSFORMS: dict[str, Callable[[pa.Table, Contract, SeenKeys], TransformedTable | None]] = {
    "identity": identity_arrow,
    "transform_sales": transform_sales_arrow,
}


def transform_arrow(table: pa.Table, contract: Contract, seen: SeenKeys) -> TransformedTable | None:
    """Transform one chunk held in Arrow (the contract's types), or None when the contract's
    transform has no Arrow form for these rows (then ``transform`` on the pandas rows)."""
    found = ARROW_TRANSFORMS.get(contract.transform)
    return None if found is None else found(table, contract, seen)
