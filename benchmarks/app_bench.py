"""The app's flows (seeds 000/001): the activity ETL on a day of 10M feed actions against the bare
aggregation queries and the seed's pull-rows-into-pandas approach; one alert check over every
metric and slice; and detection quality (precision, recall, delay) of the detector against the
seed's simple rule on generated series with injected incidents of several sizes.

ClickHouse databases prefixed ``b_``, Redis db 14 and a temporary runtime folder: nothing of the
demo's is touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import tempfile
import time

import numpy as np
import pandas as pd

from benchmarks.common import benchmark, report, timed

DAY = dt.date(2024, 6, 10)


def _isolate(runtime: str) -> None:
    os.environ.update({"PIPELINE_RUNTIME_DIR": runtime, "PIPELINE_REDIS_DB": "14"})
    from config.settings import load_settings
    from pipeline.bootstrap import create_clickhouse_databases

    create_clickhouse_databases(load_settings())


def _seed_style() -> None:
    """What the seed did: every raw row of the day into pandas, then groupby there."""
    import requests

    from pipeline.core.sql import render_text
    from pipeline.systems.clickhouse import ClickHouse

    settings = ClickHouse().settings
    params = {"simulator": settings.database("simulator"), "day": DAY}

    def pull(name: str, text: str) -> pd.DataFrame:
        # The seed's own queries (the baseline being measured), filled by the statement renderer.
        query = render_text(name, text, params) + "\nFORMAT CSVWithNames"
        response = requests.post(settings.http_url, data=query.encode(), timeout=600)
        return pd.read_csv(io.BytesIO(response.content))

    feed = pull(
        "seed/feed_day",
        "SELECT user_id, action, gender, age, os FROM {simulator}.feed_actions"
        " WHERE toDate(time) = %(day)s",
    )
    messages = pull(
        "seed/messages_day",
        "SELECT user_id, receiver_id, gender, age, os FROM {simulator}.message_actions"
        " WHERE toDate(time) = %(day)s",
    )
    per_user = feed.groupby("user_id").agg(
        views=("action", lambda s: int((s == "view").sum())),
        likes=("action", lambda s: int((s == "like").sum())),
    )
    sent = messages.groupby("user_id").agg(
        messages_sent=("receiver_id", "size"), users_sent=("receiver_id", "nunique")
    )
    received = messages.groupby("receiver_id").agg(
        messages_received=("user_id", "size"), users_received=("user_id", "nunique")
    )
    per_user.join(sent, how="outer").join(received, how="outer")


@benchmark("activity")
def activity_bench(args: argparse.Namespace) -> None:
    import luigi

    from demo.simulator import SimSpec, write_day
    from pipeline.activity.tasks import ActivityDaily
    from pipeline.systems.clickhouse import ClickHouse

    with tempfile.TemporaryDirectory(prefix="app-bench-") as runtime:
        _isolate(runtime)
        spec = SimSpec(
            start=DAY - dt.timedelta(days=30),
            base_users=300_000,
            feed_actions_per_day=10_000_000,
            messages_per_day=500_000,
        )
        began = time.perf_counter()
        counts = write_day(DAY, spec)
        generate_s = time.perf_counter() - began
        print(
            f"\nSimulator: {counts['feed_actions']:,} feed actions + {counts['message_actions']:,}"
            f" messages for {DAY} in {generate_s:.1f} s"
            f" ({counts['feed_actions'] / generate_s / 1e6:.2f} M feed actions/s into ClickHouse)"
        )
        ch = ClickHouse()
        bare = timed(
            lambda: (
                ch.frame("activity/extract_feed", day=DAY),
                ch.frame("activity/extract_messages", day=DAY),
            )
        )
        flow = timed(
            lambda: luigi.build(
                [ActivityDaily(date=DAY)], local_scheduler=True, workers=2, log_level="WARNING"
            )
        )
        seed = timed(_seed_style)
        report(
            "Activity ETL for a day of 10M feed actions",
            {
                "seed style: raw rows into pandas, groupby": seed,
                "the flow (ActivityDaily, 2 workers)": flow,
                "bare aggregation queries (both extracts)": bare,
            },
            baseline="seed style: raw rows into pandas, groupby",
        )
        print(f"  the flow takes {flow / bare:.1f}x the bare queries")


@benchmark("alerts")
def alerts_bench(args: argparse.Namespace) -> None:
    from demo.simulator import SimSpec, write_day
    from pipeline.alerts.tasks import check_slot, load_config
    from pipeline.systems.redis import connect

    with tempfile.TemporaryDirectory(prefix="alerts-bench-") as runtime:
        _isolate(runtime)
        from config.settings import load_settings

        connect(load_settings().redis).flushdb()
        start = DAY - dt.timedelta(days=7)
        spec = SimSpec(start=start, feed_actions_per_day=500_000, messages_per_day=50_000)
        for i in range(8):
            write_day(start + dt.timedelta(days=i), spec)
        config = load_config()
        series = len(config.metrics) * (1 + 2 * len(config.slices))
        times = []
        for hour in (10, 14, 20):
            slot = pd.Timestamp(dt.datetime.combine(DAY, dt.time(hour, 0)))
            began = time.perf_counter()
            check_slot(slot, config)
            times.append(time.perf_counter() - began)
        print(
            f"\nOne alert check (8 days of 500k feed actions/day; {len(config.metrics)} metrics x"
            f" overall + {', '.join(config.slices)} = {series} series): "
            f"median {sorted(times)[1]:.2f} s, max {max(times):.2f} s"
        )


def _quality(
    detector: str, sizes: tuple[float, ...], trials: int = 20
) -> dict[float, tuple[float, float, float]]:
    """Per incident size: precision, recall and mean delay (slots) over generated series."""
    from pipeline.alerts.detector import detect, simple_rule

    slot = pd.Timedelta(minutes=15)
    out = {}
    for size in sizes:
        true_pos = false_pos = found = 0
        delays = []
        for trial in range(trials):
            rng = np.random.default_rng([trial, int(size * 100) + 1000])
            index = pd.date_range("2024-01-01", periods=96 * 14, freq=slot)
            hours = index.hour + index.minute / 60
            scale = rng.choice([3.0, 10.0, 30.0])
            level = scale * (
                30 + 40 * np.exp(-((hours - 13) ** 2) / 8) + 60 * np.exp(-((hours - 20.5) ** 2) / 6)
            )
            level = level * np.where(index.dayofweek >= 5, 1.15, 1.0)
            values = rng.poisson(level).astype(float)
            start = 96 * 12 + int(rng.integers(24, 80))
            length = int(rng.integers(4, 9))
            values[start : start + length] *= 1 + size
            series = pd.Series(values, index=index)
            decided = (
                detect(series, slot) if detector == "detector" else simple_rule(series, slot)
            )["anomalous"].to_numpy()
            judged = decided[96 * 7 :]  # both rules have history from here
            inside = np.zeros(len(series), bool)
            inside[start : start + length] = True
            inside = inside[96 * 7 :]
            true_pos += int((judged & inside).sum())
            false_pos += int((judged & ~inside).sum())
            hits = np.flatnonzero(judged & inside)
            if len(hits):
                found += 1
                delays.append(int(hits[0] - np.flatnonzero(inside)[0]))
        precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0
        out[size] = (precision, found / trials, float(np.mean(delays)) if delays else float("nan"))
    return out


@benchmark("detection")
def detection_bench(args: argparse.Namespace) -> None:
    sizes = (-0.2, -0.4, -0.6, 0.5, 1.0)
    print("\nDetection quality (20 generated 14-day series per size, incidents of 1-2 hours)")
    print(
        f"  {'incident':>9}  {'detector: precision recall delay':<36}"
        " seed rule: precision recall delay"
    )
    ours, seeds = _quality("detector", sizes), _quality("simple", sizes)
    for size in sizes:
        p1, r1, d1 = ours[size]
        p2, r2, d2 = seeds[size]
        print(
            f"  {size:>+9.0%}  {p1:>9.2f} {r1:>7.2f} {d1:>6.1f} slots"
            f"          {p2:>9.2f} {r2:>7.2f} {d2:>6.1f} slots"
        )
