"""Dataset contracts: what a file of each dataset must look like, declared, not coded.

A contract names the file pattern, the columns with their types and constraints, the key used to
de-duplicate rows, the PostgreSQL table the rows go to, and how many bad rows a file may have
before it is quarantined whole. Adding a dataset is a contract here (plus, if needed, one
transform function in ``transforms.py``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

# Values are exact end to end: an "int" is a 64-bit integer (PostgreSQL bigint), a "decimal" a
# fixed-point number of ``precision`` digits, ``scale`` of them after the point (numeric(p, s)).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# How a decimal with more places than the column's scale is brought to it: "half_up" rounds to the
# nearest, a tie away from zero (0.125 -> 0.13, -0.125 -> -0.13); "reject" makes it a bad row.
ROUNDINGS = ("half_up", "reject")
MB = 1024 * 1024


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # "int", "decimal", "date", "str"
    nullable: bool = False
    min: int | Decimal | dt.date | None = None
    max: int | Decimal | dt.date | None = None
    allowed: frozenset[str] | None = None
    max_length: int = 256
    # "decimal" only: digits in all, digits after the point, and how extra places are treated.
    precision: int = 14
    scale: int = 2
    rounding: str = "half_up"

    def __post_init__(self) -> None:
        if self.type not in {"int", "decimal", "date", "str"}:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"column {self.name}: rounding must be one of {ROUNDINGS}")
        if not 0 <= self.scale <= self.precision <= 38:  # Arrow's decimal128
            raise ValueError(f"column {self.name}: need 0 <= scale <= precision <= 38")
        for bound in (self.min, self.max):
            if bound is not None and isinstance(bound, float):
                raise ValueError(f"column {self.name}: bounds are exact (int, Decimal), not float")

    @property
    def pg_type(self) -> str:
        return {
            "int": "bigint",
            "decimal": f"numeric({self.precision}, {self.scale})",
            "date": "date",
            "str": "text",
        }[self.type]


@dataclass(frozen=True)
class Contract:
    dataset: str
    # Matched against the whole file name; named groups become file attributes (week, region).
    pattern: re.Pattern[str]
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    pg_table: str
    # A file with more than this share of bad rows is quarantined whole.
    reject_threshold: float = 0.05
    # A file larger than this is quarantined with the reason, never read.
    max_bytes: int = 512 * MB
    delimiter: str = ","
    encoding: str = "utf-8"
    transform: str = "identity"
    # Columns the flows filter on (an index each): the weekly sales aggregate reads by date.
    indexes: tuple[str, ...] = ()
    # The date column retention ages rows by ('' keeps rows forever).
    retention_column: str = ""
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.dataset}: no column {name!r}")

    def match(self, file_name: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(file_name)
        return None if found is None else found.groupdict()


SALES = Contract(
    dataset="sales",
    pattern=re.compile(
        r"sales_(?P<year>[0-9]{4})_w(?P<week>[0-9]{2})_(?P<region>north|south|east|west)\.csv"
    ),
    columns=(
        Column("sale_id", "int", min=1),
        Column("customer_id", "int", min=1),
        Column("product_id", "int", min=1),
        Column("quantity", "int", min=1, max=1000),
        Column("sale_date", "date", min=dt.date(2000, 1, 1), max=dt.date(2100, 1, 1)),
        Column(
            "sale_amount",
            "decimal",
            min=Decimal("0"),
            max=Decimal("10000000"),
            precision=14,
            scale=2,
            rounding="half_up",
        ),
        Column("region", "str", allowed=frozenset({"North", "South", "East", "West"})),
    ),
    key=("sale_id",),
    pg_table="sales.sales",
    reject_threshold=0.05,
    max_bytes=512 * MB,
    transform="transform_sales",
    indexes=("sale_date",),
    retention_column="sale_date",
    description="One row per order: weekly files per region (the online store's sales).",
)

CONTRACTS: dict[str, Contract] = {c.dataset: c for c in (SALES,)}


def contract_for(file_name: str) -> tuple[Contract, dict[str, str]] | None:
    """The contract whose pattern the file name matches, and the attributes it carries."""
    for contract in CONTRACTS.values():
        attributes = contract.match(file_name)
        if attributes is not None:
            return contract, attributes
    return None
