"""The app's flows (seeds 000/001): the activity ETL on a day of 10M feed actions against the bare
aggregation queries and the seed's pull-rows-into-pandas approach; one alert check over every
metric and slice; and detection quality (precision, recall, delay) of the detector against the
seed's simple rule on generated series with injected incidents of several sizes.

ClickHouse databases prefixed ``b_``, Redis db 5 (``benchmarks.common``) and a temporary runtime
folder: nothing of the demo's is touched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import tempfile
import time

import pandas as pd

from benchmarks.common import REDIS_DB, benchmark, report, timed

DAY = dt.date(2024, 6, 10)


def _isolate(runtime: str) -> None:
    os.environ.update({"PIPELINE_RUNTIME_DIR": runtime, "PIPELINE_REDIS_DB": REDIS_DB})
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


@benchmark("detection")
def detection_bench(args: argparse.Namespace) -> None:
    """Window recall and false alarms per 1,000 points, the alert flow's detector beside the
    requirements' rule (the same slot a day earlier, deviation > 30% / 50% / 100%)."""
    from pipeline.alerts.scoring import (
        data_dir,
        detectors,
        generated_table,
        load_labelled,
        real_table,
    )

    decide = detectors(old=None)
    print("\nLabelled real series (window recall / false alarms per 1,000 points)\n")
    print(real_table(load_labelled(data_dir()), decide))
    print("\nGenerated incidents (20 series per row)\n")
    print(generated_table(decide))
