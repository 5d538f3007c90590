"""The activity ETL on the real ClickHouse: a day checked against an independent computation from
the raw tables, reruns leave the table unchanged, a day without events, and the pure join."""

from __future__ import annotations

import datetime as dt

import luigi
import pandas as pd
import pytest

from demo.simulator import SimSpec, write_day
from pipeline.activity.tasks import ActivityDaily, LoadActivity
from pipeline.activity.transform import join_users, slice_by
from pipeline.systems.clickhouse import ClickHouse

SPEC = SimSpec(seed=4, base_users=3_000, feed_actions_per_day=20_000, messages_per_day=3_000)


def build(day: dt.date) -> bool:
    return luigi.build(
        [ActivityDaily(date=day)], local_scheduler=True, workers=2, log_level="WARNING"
    )


def table_rows(day: dt.date) -> pd.DataFrame:
    return pd.DataFrame(ClickHouse().query("activity/day_rows", day=day))


def raw(day: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every raw row of the day, pulled out of ClickHouse (the way the seed did it)."""
    settings = ClickHouse().settings
    import requests

    def pull(table: str) -> pd.DataFrame:
        sql = (
            f"SELECT * FROM {settings.database('simulator')}.{table}"
            f" WHERE toDate(time) = '{day}' FORMAT CSVWithNames"
        )
        text = requests.post(settings.http_url, data=sql.encode(), timeout=60).text
        import io

        return pd.read_csv(io.StringIO(text))

    return pull("feed_actions"), pull("message_actions")


def expected(day: dt.date) -> pd.DataFrame:
    feed, messages = raw(day)
    users: dict[int, dict[str, object]] = {}

    def user(uid: int) -> dict[str, object]:
        return users.setdefault(
            int(uid),
            {m: 0 for m in ("views", "likes", "sent", "received")}
            | {"to": set(), "from": set(), "attrs": None},
        )

    for row in feed.itertuples():
        u = user(row.user_id)
        u["views" if row.action == "view" else "likes"] += 1  # type: ignore[operator]
        u["attrs"] = (row.os, row.gender, str(row.age))
    for row in messages.itertuples():
        sender, receiver = user(row.user_id), user(row.receiver_id)
        sender["sent"] += 1  # type: ignore[operator]
        sender["to"].add(row.receiver_id)  # type: ignore[union-attr]
        receiver["received"] += 1  # type: ignore[operator]
        receiver["from"].add(row.user_id)  # type: ignore[union-attr]
        if sender["attrs"] is None:
            sender["attrs"] = (row.os, row.gender, str(row.age))
    out: dict[tuple[str, str], list[int]] = {}
    for u in users.values():
        attrs = u["attrs"] or ("unknown", "unknown", "unknown")
        for dimension, value in zip(("os", "gender", "age"), attrs, strict=True):  # type: ignore[arg-type]
            acc = out.setdefault((dimension, value), [0] * 6)
            for i, v in enumerate(
                (u["views"], u["likes"], u["received"], u["sent"], len(u["from"]), len(u["to"]))  # type: ignore[arg-type]
            ):
                acc[i] += v  # type: ignore[operator]
    rows = [
        {
            "dimension": d,
            "dimension_value": v,
            "views": a[0],
            "likes": a[1],
            "messages_received": a[2],
            "messages_sent": a[3],
            "users_received": a[4],
            "users_sent": a[5],
        }
        for (d, v), a in out.items()
    ]
    return pd.DataFrame(rows).sort_values(["dimension", "dimension_value"], ignore_index=True)


@pytest.mark.integration
def test_a_day_matches_an_independent_computation_from_the_raw_tables(
    stack: None, runtime: object
) -> None:
    day = dt.date(2024, 2, 6)
    write_day(day, SPEC)
    assert build(day)
    got = table_rows(day).drop(columns=["event_date"])
    want = expected(day)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    # The slices partition the same users: every dimension sums to the same totals.
    totals = got.groupby("dimension")[["views", "messages_sent", "users_received"]].sum()
    assert (totals.nunique() == 1).all()
    assert (
        "unknown" not in set(got[got["dimension"] == "os"]["dimension_value"])
        or (
            got[(got["dimension"] == "os") & (got["dimension_value"] == "unknown")]["views"] == 0
        ).all()
    )


@pytest.mark.integration
def test_reruns_leave_the_table_unchanged_and_other_days_alone(
    stack: None, runtime: object
) -> None:
    first, second = dt.date(2024, 2, 7), dt.date(2024, 2, 8)
    for day in (first, second):
        write_day(day, SPEC)
        assert build(day)
    before = {d: table_rows(d) for d in (first, second)}
    assert build(first)  # complete: nothing runs
    LoadActivity(date=first).run()  # forced past its marker
    LoadActivity(date=first).run()
    for day, rows in before.items():
        pd.testing.assert_frame_equal(table_rows(day), rows)


@pytest.mark.integration
def test_a_day_without_events_loads_no_rows(stack: None, runtime: object) -> None:
    day = dt.date(2024, 2, 20)
    write_day(day, SimSpec(seed=4, base_users=100, feed_actions_per_day=0, messages_per_day=0))
    assert build(day)
    assert table_rows(day).empty


def test_users_on_one_side_get_zeros_and_their_own_attributes() -> None:
    feed = pd.DataFrame(
        [{"user_id": 1, "views": 5, "likes": 1, "gender": "male", "age": 25, "os": "iOS"}]
    )
    messages = pd.DataFrame(
        [
            {
                "user_id": 1,
                "messages_sent": 2,
                "users_sent": 1,
                "messages_received": 0,
                "users_received": 0,
                "gender": "male",
                "age": 25,
                "os": "iOS",
            },
            {
                "user_id": 2,
                "messages_sent": 3,
                "users_sent": 2,
                "messages_received": 1,
                "users_received": 1,
                "gender": "female",
                "age": 31,
                "os": "Android",
            },
            {
                "user_id": 3,
                "messages_sent": 0,
                "users_sent": 0,
                "messages_received": 4,
                "users_received": 2,
                "gender": "",
                "age": 0,
                "os": "",
            },
        ]
    )
    users = join_users(feed, messages).set_index("user_id")
    assert users.loc[2, "views"] == 0 and users.loc[2, "os"] == "Android"
    assert users.loc[2, "age"] == "31"  # not 31.0: the outer join's floats do not leak
    assert users.loc[3, ["gender", "age", "os"]].tolist() == ["unknown"] * 3
    by_os = slice_by(users.reset_index(), "os", dt.date(2024, 1, 1)).set_index("dimension_value")
    assert by_os.loc["iOS", "messages_sent"] == 2 and by_os.loc["Android", "views"] == 0
    assert by_os["messages_received"].sum() == 5
    with pytest.raises(ValueError, match="dimension must be one of"):
        slice_by(users.reset_index(), "city", dt.date(2024, 1, 1))
