"""One year of an online store's sales, as its requirement describes them, in weekly files
per region.

- 52 ISO weeks from Monday 2023-09-04 to Sunday 2024-09-01; exactly 1,000,000 orders in total:
  about 1,000,000 / (365 / 7) a week +-10%, the last week making up the exact total.
- Customers grow from 72,700 to 142,900 (the first week's base, then (142,900 - 72,700) / (365 / 7)
  new ones a week +-10%), each with a region, an age (18 or more at registration, at most 87),
  a registration date after 2023-01-01, and an activity level: some never buy.
- Products with a price each; an order is quantity x price.
- A small share of rows is repeated inside a file (re-sent rows), so de-duplication matters.
- One region's files are not delivered for weeks 20-23 (configurable): their orders are generated
  (the totals stay exact) but never reach the inbox.

Deterministic for a seed and vectorised (numpy): the whole year takes seconds.

    python -m demo.sales_generator --out var/inbox            # the year, into the inbox
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.files import atomic_write

REGIONS = ("North", "South", "East", "West")
FIRST_MONDAY = dt.date(2023, 9, 4)
STORE_START = dt.date(2023, 1, 1)


@dataclass(frozen=True)
class SalesSpec:
    total_orders: int = 1_000_000
    weeks: int = 52
    start_customers: int = 72_700
    final_customers: int = 142_900
    products: int = 2_000
    duplicate_share: float = 0.003
    missing_region: str | None = "East"
    missing_weeks: tuple[int, ...] = (20, 21, 22, 23)
    seed: int = 2024
    first_monday: dt.date = FIRST_MONDAY
    inactive_share: float = 0.25
    extra: dict[str, int] = field(default_factory=dict)

    def week_start(self, week: int) -> dt.date:
        """Week 1 is ``first_monday``."""
        return self.first_monday + dt.timedelta(days=7 * (week - 1))


def file_name(week_start: dt.date, region: str) -> str:
    year, week, _ = week_start.isocalendar()
    return f"sales_{year}_w{week:02d}_{region.lower()}.csv"


def weekly_order_counts(spec: SalesSpec, rng: np.random.Generator) -> np.ndarray:
    mean = spec.total_orders / (365 / 7)
    counts = np.round(mean * rng.uniform(0.9, 1.1, spec.weeks - 1)).astype(np.int64)
    last = spec.total_orders - int(counts.sum())
    if last < 0:
        raise ValueError("the first weeks already exceed the total; lower the weekly mean")
    return np.append(counts, last)


def customer_counts(spec: SalesSpec, rng: np.random.Generator) -> np.ndarray:
    """Registered customers at the end of each week."""
    growth = (spec.final_customers - spec.start_customers) / (365 / 7)
    new = np.round(growth * rng.uniform(0.9, 1.1, spec.weeks - 1)).astype(np.int64)
    return np.concatenate([[spec.start_customers], spec.start_customers + np.cumsum(new)])


@dataclass(frozen=True)
class Customers:
    region: np.ndarray
    activity: np.ndarray
    registered: np.ndarray  # datetime64[D]
    age: np.ndarray


def make_customers(spec: SalesSpec, counts: np.ndarray, rng: np.random.Generator) -> Customers:
    n = int(counts[-1])
    region = rng.integers(0, len(REGIONS), n)
    # Activity: the relative rate of ordering; a quarter never buy.
    activity = rng.gamma(0.8, 1.0, n)
    activity[rng.random(n) < spec.inactive_share] = 0.0
    first = np.datetime64(STORE_START)
    base_end = np.datetime64(spec.first_monday)
    registered = np.empty(n, dtype="datetime64[D]")
    start = int(counts[0])
    registered[:start] = first + rng.integers(
        0, int((base_end - first) / np.timedelta64(1, "D")), start
    )
    for week in range(1, len(counts)):
        lo, hi = int(counts[week - 1]), int(counts[week])
        week_start = np.datetime64(spec.week_start(week + 1))
        registered[lo:hi] = week_start + rng.integers(0, 7, hi - lo)
    age = rng.integers(18, 88, n)  # at registration; <= 87
    return Customers(region, activity, registered, age)


def generate_weeks(spec: SalesSpec = SalesSpec()) -> Iterator[tuple[dt.date, pd.DataFrame]]:
    """Each week's orders (all regions), in order, with sale ids unique over the year."""
    rng = np.random.default_rng(spec.seed)
    orders_per_week = weekly_order_counts(spec, rng)
    counts = customer_counts(spec, rng)
    customers = make_customers(spec, counts, rng)
    prices = np.round(np.exp(rng.normal(5.5, 1.0, spec.products)), 2).clip(0.5, 50_000)
    popularity = rng.zipf(1.6, spec.products).astype(float)
    popularity /= popularity.sum()
    next_id = 1
    for week in range(1, spec.weeks + 1):
        start = spec.week_start(week)
        n = int(orders_per_week[week - 1])
        known = int(counts[week - 1])
        weights = customers.activity[:known]
        buyer = rng.choice(known, size=n, p=weights / weights.sum())
        product = rng.choice(spec.products, size=n, p=popularity)
        quantity = np.minimum(rng.geometric(0.55, n), 20)
        frame = pd.DataFrame(
            {
                "sale_id": np.arange(next_id, next_id + n, dtype=np.int64),
                "customer_id": buyer.astype(np.int64) + 1,
                "product_id": product.astype(np.int64) + 1,
                "quantity": quantity.astype(np.int64),
                "sale_date": np.datetime64(start) + rng.integers(0, 7, n),
                "sale_amount": np.round(quantity * prices[product], 2),
                "region": np.asarray(REGIONS)[customers.region[buyer]],
            }
        )
        next_id += n
        yield start, frame


def week_files(
    spec: SalesSpec, week: int, start: dt.date, frame: pd.DataFrame, rng: np.random.Generator
) -> Iterator[tuple[str, pd.DataFrame]]:
    """The week's files: one per region, with a few rows repeated; the missing region left out."""
    for region in REGIONS:
        if region == spec.missing_region and week in spec.missing_weeks:
            continue
        part = frame[frame["region"] == region]
        repeats = part.sample(
            n=max(1, int(len(part) * spec.duplicate_share)), random_state=rng.integers(1 << 31)
        )
        yield (
            file_name(start, region),
            pd.concat([part, repeats]).sort_values("sale_id", kind="stable"),
        )


def write_year(out: Path, spec: SalesSpec = SalesSpec()) -> dict[str, int]:
    """Write the year's files into ``out`` (each written to a temp name, then renamed in)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed + 1)
    files = rows = orders = 0
    for week, (start, frame) in enumerate(generate_weeks(spec), start=1):
        orders += len(frame)
        for name, part in week_files(spec, week, start, frame, rng):
            text = part.to_csv(index=False, date_format="%Y-%m-%d", float_format="%.2f")
            # Atomic, so the inbox never sees half a file (its temp name is a dot-file).
            atomic_write(out / name, text, mode=0o644, durable=False)
            files += 1
            rows += len(part)
    return {"files": files, "rows_written": rows, "orders_generated": orders}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a year of sales files.")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (the inbox)")
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--missing-region", default="East", help="'' for none")
    parser.add_argument("--missing-weeks", default="20-23", help="e.g. 20-23")
    args = parser.parse_args(argv)
    lo, _, hi = args.missing_weeks.partition("-")
    spec = SalesSpec(
        total_orders=args.orders,
        seed=args.seed,
        missing_region=args.missing_region or None,
        missing_weeks=tuple(range(int(lo), int(hi or lo) + 1)) if lo else (),
    )
    print(write_year(args.out, spec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
