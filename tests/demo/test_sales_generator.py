"""The sales generator (seed 004): exact totals, realism rules, determinism."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from demo.sales_generator import REGIONS, SalesSpec, customer_counts, generate_weeks, write_year
from pipeline.inbox.contract import SALES
from pipeline.inbox.validate import check

SMALL = SalesSpec(total_orders=30_000, weeks=8, products=200, missing_weeks=(3, 4), seed=7)


def test_the_year_has_exactly_the_orders_asked_for_and_a_unique_id_each() -> None:
    weeks = list(generate_weeks(SMALL))
    assert len(weeks) == 8
    frame = pd.concat(f for _, f in weeks)
    assert len(frame) == 30_000 and frame["sale_id"].is_unique
    assert [start.weekday() for start, _ in weeks] == [0] * 8
    assert set(frame["region"]) == set(REGIONS)
    assert (frame["sale_amount"] > 0).all() and (frame["quantity"] >= 1).all()
    for start, week in weeks:
        assert (
            week["sale_date"]
            .between(pd.Timestamp(start), pd.Timestamp(start + dt.timedelta(days=6)))
            .all()
        )


def test_weekly_orders_follow_the_seed_for_the_full_year() -> None:
    spec = SalesSpec()
    sizes = [len(f) for _, f in generate_weeks(SalesSpec(weeks=52, products=50, seed=3))][:5]
    mean = spec.total_orders / (365 / 7)
    assert all(0.9 * mean - 1 <= n <= 1.1 * mean + 1 for n in sizes)


def test_customers_grow_from_72700_to_about_142900() -> None:
    import numpy as np

    counts = customer_counts(SalesSpec(), np.random.default_rng(1))
    assert counts[0] == 72_700
    assert 142_900 * 0.97 < counts[-1] < 142_900 * 1.03
    assert (np.diff(counts) > 0).all()


def test_files_per_region_with_the_missing_region_left_out(tmp_path: Path) -> None:
    stats = write_year(tmp_path, SMALL)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert stats["files"] == len(names) == 8 * 4 - 2
    assert not [n for n in names if n.endswith("_east.csv") and ("_w38_" in n or "_w39_" in n)]
    assert stats["orders_generated"] == 30_000
    frame = pd.concat(pd.read_csv(tmp_path / n) for n in names)
    repeated = frame["sale_id"].duplicated().sum()
    assert 0 < repeated < 0.01 * len(frame)  # a few re-sent rows to de-duplicate
    sample = check((tmp_path / names[0]).read_bytes(), SALES)
    assert sample.rows_rejected == 0  # every generated file meets the contract


def test_the_same_seed_gives_the_same_files(tmp_path: Path) -> None:
    write_year(tmp_path / "a", SMALL)
    write_year(tmp_path / "b", SMALL)
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
