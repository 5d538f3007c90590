"""Generated prosthesis telemetry for a day, written to PostgreSQL schema ``telemetry``.

The source the telemetry mart reads, for the demo and the tests (a real deployment has the
devices write these tables). Two tables:

- ``telemetry.usage_sessions``: one row per period of use of a prosthesis (start, end);
- ``telemetry.device_events``: one row per action inside a session: its type (grasp, release,
  flex), the prosthesis' response time in ms, and the battery level at that moment.

Realism: each user has a prosthesis (5% have two), a habit (how many sessions a day, how intense),
a device whose response time varies around its own median, and a battery that drains through the
day. About 10% of users do not use their prosthesis on a given day. Days are UTC.

Deterministic for (seed, day); writing a day replaces that day (a rerun does not double rows).

    python -m demo.telemetry_generator --day 2024-01-15 --users 300
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.systems import postgres
from pipeline.systems.postgres import copy_csv, transaction
from pipeline.telemetry.contract import ACTIONS, SOURCES_DDL


@dataclass(frozen=True)
class TelemetrySpec:
    users: int = 300
    seed: int = 3
    idle_share: float = 0.10  # users who do not use their prosthesis that day
    second_device_share: float = 0.05


def prosthesis_id(user_id: int, second: bool = False) -> str:
    return f"BP-{user_id:06d}{'-B' if second else ''}"


def generate_day(day: dt.date, spec: TelemetrySpec = TelemetrySpec()) -> dict[str, pd.DataFrame]:
    """The day's sessions and events (pure: numbers in, frames out)."""
    users = np.arange(1, spec.users + 1)
    # The user's traits come from the seed alone, so they stay the same every day.
    traits = np.random.default_rng(spec.seed)
    habit = traits.gamma(2.0, 1.5, spec.users)  # sessions a day
    intensity = traits.uniform(40, 220, spec.users)  # actions an hour of use
    median_ms = traits.lognormal(np.log(180), 0.35, spec.users)
    second = traits.random(spec.users) < spec.second_device_share
    rng = np.random.default_rng([spec.seed, day.toordinal()])
    active = rng.random(spec.users) >= spec.idle_share
    sessions_per_user = np.where(active, rng.poisson(habit) + 1, 0)
    n = int(sessions_per_user.sum())
    owner = np.repeat(np.arange(spec.users), sessions_per_user)
    on_second = second[owner] & (rng.random(n) < 0.3)
    midnight = pd.Timestamp(day, tz="UTC")
    # A user's sessions do not overlap: the waking day (06:00-22:00) is cut into one slot per
    # session; a session starts in the first half of its slot and ends before the slot does.
    first = np.repeat(np.cumsum(sessions_per_user) - sessions_per_user, sessions_per_user)
    rank = np.arange(n) - first
    slot_s = 16 * 3600 / np.maximum(sessions_per_user[owner], 1)
    start_s = np.floor(6 * 3600 + (rank + rng.uniform(0, 0.5, n)) * slot_s)  # whole seconds
    length_s = np.minimum(rng.gamma(2.0, 900, n) + 60, slot_s * 0.5).astype(np.int64)
    sessions = pd.DataFrame(
        {
            "session_id": day.toordinal() * 1_000_000 + np.arange(n, dtype=np.int64),
            "user_id": users[owner],
            "prosthesis_id": [
                prosthesis_id(int(u), bool(b)) for u, b in zip(users[owner], on_second, strict=True)
            ],
            "started_at": midnight + pd.to_timedelta(start_s.astype(np.int64), unit="s"),
        }
    )
    sessions["ended_at"] = sessions["started_at"] + pd.to_timedelta(
        length_s.astype(np.int64), unit="s"
    )
    counts = rng.poisson(intensity[owner] * length_s / 3600)
    session_of = np.repeat(np.arange(n), counts)
    m = len(session_of)
    offset = np.floor(rng.uniform(0, 1, m) * length_s[session_of] * 1000) / 1000
    event_s = start_s[session_of] + offset
    battery = np.clip(100 - (event_s - 6 * 3600) / 3600 * rng.uniform(2, 6, m), 0, 100)
    events = pd.DataFrame(
        {
            "user_id": sessions["user_id"].to_numpy()[session_of],
            "prosthesis_id": sessions["prosthesis_id"].to_numpy()[session_of],
            "event_time": midnight + pd.to_timedelta((event_s * 1000).astype(np.int64), unit="ms"),
            "action_type": np.asarray(ACTIONS)[rng.choice(3, m, p=[0.4, 0.4, 0.2])],
            "response_time_ms": np.round(
                rng.lognormal(np.log(median_ms[owner[session_of]]), 0.25), 1
            ),
            "battery_level": battery.astype(np.int64),
            "session_id": sessions["session_id"].to_numpy()[session_of],
        }
    ).sort_values("event_time", kind="stable")
    return {"usage_sessions": sessions, "device_events": events.reset_index(drop=True)}


def ensure_tables() -> None:
    """The telemetry flow's source tables, as the flow declares them."""
    postgres.ensure(SOURCES_DDL, "telemetry")


def write_day(day: dt.date, spec: TelemetrySpec = TelemetrySpec()) -> dict[str, int]:
    """Replace the day's telemetry in PostgreSQL with the generated one, in one transaction."""
    frames = generate_day(day, spec)
    ensure_tables()
    counts: dict[str, int] = {}
    with transaction() as cur:
        lo, hi = day, day + dt.timedelta(days=1)
        postgres.run(cur, "demo/delete_telemetry_day", {"lo": lo, "hi": hi})
        for table, frame in frames.items():
            buffer = io.StringIO()
            frame.to_csv(buffer, index=False, date_format="%Y-%m-%d %H:%M:%S.%f%z")
            buffer.seek(0)
            counts[table] = copy_csv(cur, f"telemetry.{table}", list(frame.columns), buffer)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate a day of prosthesis telemetry.")
    parser.add_argument("--day", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--days", type=int, default=1, help="this many days from --day")
    parser.add_argument("--users", type=int, default=TelemetrySpec.users)
    parser.add_argument("--seed", type=int, default=TelemetrySpec.seed)
    args = parser.parse_args(argv)
    spec = TelemetrySpec(users=args.users, seed=args.seed)
    for i in range(args.days):
        day = args.day + dt.timedelta(days=i)
        print(day, write_day(day, spec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
