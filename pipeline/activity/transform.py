"""The activity ETL's transforms: pure, per-user frames in, slices out.

- ``join_users``: the feed side (views, likes) and the messenger side (sent, received, and the
  distinct people each way) of a day, one row per user. A user present on one side only gets
  zeros for the other; the attributes are the user's own (feed rows first, else their sent
  messages); a user who only received messages and did nothing else has none: ``unknown``.
- ``slice_by``: the users' metrics summed per value of a dimension (os, gender, age), as rows of
  ``test.activity_daily``.
"""

from __future__ import annotations

import pandas as pd

METRICS = [
    "views",
    "likes",
    "messages_received",
    "messages_sent",
    "users_received",
    "users_sent",
]
DIMENSIONS = ("os", "gender", "age")
ATTRIBUTES = ("gender", "age", "os")
TABLE_COLUMNS = ["event_date", "dimension", "dimension_value", *METRICS]
UNKNOWN = "unknown"
FEED_COLUMNS = ["user_id", "views", "likes", *ATTRIBUTES]
MESSAGE_COLUMNS = [
    "user_id",
    "messages_sent",
    "users_sent",
    "messages_received",
    "users_received",
    *ATTRIBUTES,
]


def _attribute(value: object) -> str:
    """An attribute as text; '' when the user has none on that side (missing, or the 0 / ''
    ClickHouse gives a user without own rows). An outer join turns ages into floats: 25.0 -> 25."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value)
    return "" if text == "0" else text


def join_users(feed: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    """One row per user of the day: every metric (0 where the user had none) and attributes."""
    for name, frame, columns in (
        ("feed", feed, FEED_COLUMNS),
        ("messages", messages, MESSAGE_COLUMNS),
    ):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} extract lacks columns {missing}")
    joined = feed[FEED_COLUMNS].merge(
        messages[MESSAGE_COLUMNS],
        on="user_id",
        how="outer",
        suffixes=("_feed", "_messages"),
        validate="one_to_one",
    )
    for metric in METRICS:
        joined[metric] = joined[metric].fillna(0).astype("int64")
    for attribute in ATTRIBUTES:
        own = joined[f"{attribute}_feed"].map(_attribute)
        sent = joined[f"{attribute}_messages"].map(_attribute)
        chosen = own.where(own != "", sent)
        joined[attribute] = chosen.where(chosen != "", UNKNOWN)
    return joined[["user_id", *METRICS, *ATTRIBUTES]].sort_values("user_id", ignore_index=True)


def slice_by(users: pd.DataFrame, dimension: str, event_date: object) -> pd.DataFrame:
    """The day's metrics per value of ``dimension`` (rows of ``test.activity_daily``)."""
    if dimension not in DIMENSIONS:
        raise ValueError(f"dimension must be one of {DIMENSIONS}, got {dimension!r}")
    grouped = (
        users.assign(dimension_value=users[dimension].astype(str))
        .groupby("dimension_value", sort=True)[METRICS]
        .sum()
        .reset_index()
    )
    grouped.insert(0, "dimension", dimension)
    grouped.insert(0, "event_date", event_date)
    return grouped[TABLE_COLUMNS]
