"""The mart's pure transform and the telemetry generator: the documented formula, the join, the
handling of users unknown to the CRM, and generated data that behaves like devices."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from demo.telemetry_generator import TelemetrySpec, generate_day
from pipeline.telemetry.transform import (
    MART_COLUMNS,
    TELEMETRY_COLUMNS,
    build_mart,
    efficiency_score,
)


@pytest.mark.parametrize(
    ("response_ms", "per_hour", "battery", "score"),
    [
        (190.0, 60.0, 80.0, 76.0),  # 100 * (0.5 * 0.9 + 0.3 * 0.5 + 0.2 * 0.8)
        (50.0, 300.0, 100.0, 100.0),  # every part clipped at 1
        (1200.0, 0.0, 0.0, 0.0),  # every part clipped at 0
        (550.0, 30.0, 50.0, 42.5),  # 100 * (0.25 + 0.075 + 0.1)
    ],
)
def test_efficiency_score_is_the_documented_formula(
    response_ms: float, per_hour: float, battery: float, score: float
) -> None:
    got = efficiency_score(pd.Series([response_ms]), pd.Series([per_hour]), pd.Series([battery]))
    assert got.tolist() == [score]


def telemetry_row(user_id: int, actions: int, seconds: int) -> dict[str, object]:
    return {
        "user_id": user_id,
        "prosthesis_id": f"BP-{user_id:06d}",
        "total_actions": actions,
        "avg_response_time": 190.0,
        "max_response_time": 400.0,
        "min_response_time": 90.0,
        "grasp_count": actions // 2,
        "release_count": actions - actions // 2,
        "flex_count": 0,
        "avg_battery_level": 80.0,
        "min_battery_level": 60.0,
        "total_usage_seconds": seconds,
    }


CRM = pd.DataFrame(
    [
        {
            "user_id": 1,
            "email": "a@example.org",
            "first_name": "A",
            "last_name": "B",
            "order_date": "2023-02-01",
            "status": "active",
        }
    ]
)


def test_users_unknown_to_the_crm_are_kept_with_empty_crm_fields() -> None:
    telemetry = pd.DataFrame([telemetry_row(1, 120, 7200), telemetry_row(2, 30, 0)])
    mart = build_mart(telemetry, CRM, dt.date(2024, 1, 15))
    assert list(mart.columns) == MART_COLUMNS
    known, unknown = mart.iloc[0], mart.iloc[1]
    assert (known["crm_matched"], known["email"], known["status"]) == (1, "a@example.org", "active")
    assert known["usage_hours"] == 2.0 and known["actions_per_hour"] == 60.0
    assert known["efficiency_score"] == 76.0
    assert unknown["crm_matched"] == 0
    assert (unknown["email"], unknown["first_name"], unknown["last_name"]) == ("", "", "")
    assert unknown["order_date"] is None
    # No usage time: no division by zero, no actions per hour.
    assert unknown["usage_hours"] == 0 and unknown["actions_per_hour"] == 0


def test_a_customer_listed_twice_by_the_crm_does_not_double_rows() -> None:
    telemetry = pd.DataFrame([telemetry_row(1, 10, 600)])
    mart = build_mart(telemetry, pd.concat([CRM, CRM]), dt.date(2024, 1, 15))
    assert len(mart) == 1


def test_a_telemetry_frame_without_its_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="lacks columns"):
        build_mart(pd.DataFrame({"user_id": [1]}), CRM, dt.date(2024, 1, 15))


def test_generated_telemetry_is_deterministic_and_behaves_like_devices() -> None:
    day = dt.date(2024, 3, 5)
    spec = TelemetrySpec(users=60, seed=9)
    first, again = generate_day(day, spec), generate_day(day, spec)
    pd.testing.assert_frame_equal(first["device_events"], again["device_events"])
    sessions, events = first["usage_sessions"], first["device_events"]
    assert set(events["action_type"]) == {"grasp", "release", "flex"}
    assert events["battery_level"].between(0, 100).all()
    assert (events["response_time_ms"] > 0).all()
    # Every event lies inside its session, and a user's sessions never overlap.
    merged = events.merge(sessions, on="session_id")
    assert (
        (merged["event_time"] >= merged["started_at"])
        & (merged["event_time"] <= merged["ended_at"])
    ).all()
    for _, group in sessions.sort_values("started_at").groupby("user_id"):
        assert (
            group["started_at"].iloc[1:].to_numpy() >= group["ended_at"].iloc[:-1].to_numpy()
        ).all()
    # Some users rest that day; the rest act.
    assert 0 < events["user_id"].nunique() < spec.users
    assert set(TELEMETRY_COLUMNS) > {"user_id"}
