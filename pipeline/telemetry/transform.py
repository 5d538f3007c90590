"""The telemetry mart's transform (the ``TransformData`` task): pure, frames in, frame out.

Input: the day's telemetry aggregated per user x prosthesis (``ExtractTelemetry``) and the CRM's
customers (``ExtractCrmData``). Output: the mart's rows, in ``MART_COLUMNS`` order.

Derived metrics:

- ``usage_hours = total_usage_seconds / 3600``
- ``actions_per_hour = total_actions / usage_hours`` (0 when there was no usage time)
- ``efficiency_score`` (0-100, higher is better), a weighted sum of three parts, each clipped to
  [0, 1]:

  - responsiveness ``(1000 - avg_response_time) / 900``: 100 ms or faster is 1, 1 s or slower 0
    (weight 0.5: a slow hand is the main complaint of users);
  - intensity ``actions_per_hour / 120``: two actions a minute of use or more is 1 (weight 0.3);
  - battery ``avg_battery_level / 100`` (weight 0.2);

  ``efficiency_score = round(100 * (0.5 * responsiveness + 0.3 * intensity + 0.2 * battery), 2)``.

Users in the telemetry but unknown to the CRM are **kept**, with empty CRM fields (email, names,
status empty, order date null) and ``crm_matched = 0``; the flow counts them in its summary.
CRM customers without telemetry that day have no row (the mart reports usage).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TELEMETRY_COLUMNS = [
    "user_id",
    "prosthesis_id",
    "total_actions",
    "avg_response_time",
    "max_response_time",
    "min_response_time",
    "grasp_count",
    "release_count",
    "flex_count",
    "avg_battery_level",
    "min_battery_level",
    "total_usage_seconds",
]
CRM_COLUMNS = ["user_id", "email", "first_name", "last_name", "order_date", "status"]
MART_COLUMNS = [
    "report_date",
    "user_id",
    "prosthesis_id",
    "email",
    "first_name",
    "last_name",
    "order_date",
    "status",
    "crm_matched",
    *TELEMETRY_COLUMNS[2:],
    "usage_hours",
    "actions_per_hour",
    "efficiency_score",
]
WEIGHTS = {"responsiveness": 0.5, "intensity": 0.3, "battery": 0.2}


def efficiency_score(
    avg_response_time: pd.Series, actions_per_hour: pd.Series, avg_battery_level: pd.Series
) -> pd.Series:
    responsiveness = ((1000 - avg_response_time) / 900).clip(0, 1)
    intensity = (actions_per_hour / 120).clip(0, 1)
    battery = (avg_battery_level / 100).clip(0, 1)
    score = 100 * (
        WEIGHTS["responsiveness"] * responsiveness
        + WEIGHTS["intensity"] * intensity
        + WEIGHTS["battery"] * battery
    )
    return score.round(2)


def build_mart(telemetry: pd.DataFrame, crm: pd.DataFrame, report_date: object) -> pd.DataFrame:
    """The mart's rows for ``report_date``: telemetry left-joined with the CRM on user_id."""
    missing = [c for c in TELEMETRY_COLUMNS if c not in telemetry.columns]
    if missing:
        raise ValueError(f"telemetry aggregate lacks columns {missing}")
    customers = crm.reindex(columns=CRM_COLUMNS).drop_duplicates("user_id", keep="last")
    frame = telemetry[TELEMETRY_COLUMNS].merge(
        customers.assign(crm_matched=1), on="user_id", how="left", validate="many_to_one"
    )
    frame["crm_matched"] = frame["crm_matched"].fillna(0).astype("int64")
    for column in ("email", "first_name", "last_name", "status"):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "")
    known = frame["order_date"].notna()
    frame["order_date"] = frame["order_date"].astype(object).where(known, None)
    frame["usage_hours"] = (frame["total_usage_seconds"] / 3600).round(4)
    hours = frame["total_usage_seconds"] / 3600
    frame["actions_per_hour"] = np.where(
        hours > 0, frame["total_actions"] / hours.where(hours > 0, 1), 0.0
    ).round(2)
    frame["efficiency_score"] = efficiency_score(
        frame["avg_response_time"], frame["actions_per_hour"], frame["avg_battery_level"]
    )
    frame["report_date"] = report_date
    return frame[MART_COLUMNS].sort_values(["user_id", "prosthesis_id"], ignore_index=True)
